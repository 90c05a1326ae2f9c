module samples

go 1.21
