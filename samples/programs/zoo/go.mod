module zoo

go 1.21
