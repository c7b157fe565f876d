# tokenledger: make run | make test | make build | make bench
GO ?= go
BIN := bin/tokenledger

.PHONY: run test build bench fuzz vet clean

build:
	$(GO) build -o $(BIN) ./cmd/tokenledger

# make run ARGS='--listen 127.0.0.1:4223 --http 127.0.0.1:8081' for other ports.
run: build
	./$(BIN) serve $(ARGS)

test:
	$(GO) vet ./...
	@command -v chromium >/dev/null 2>&1 || [ -n "$$CI" ] || \
		printf '\n!!!! No chromium: the panel'"'"'s browser test (httpapi TestPanelInBrowser) will be SKIPPED. apt-get install chromium to run it. !!!!\n\n' >&2
	$(GO) test -race -count=1 -timeout 9m ./...

# Each fuzz target for a short while beyond its seed corpus (which `make test` runs).
# A count of runs rather than a duration: before go1.27, a duration can end in a
# spurious "context deadline exceeded" on a loaded machine (golang/go#75804).
FUZZTIME ?= 50000x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./events
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeFast$$' -fuzztime $(FUZZTIME) ./events
	$(GO) test -run '^$$' -fuzz '^FuzzNames$$' -fuzztime $(FUZZTIME) ./events
	$(GO) test -run '^$$' -fuzz '^FuzzParseValidate$$' -fuzztime $(FUZZTIME) ./natsapi
	$(GO) test -run '^$$' -fuzz '^FuzzParams$$' -fuzztime $(FUZZTIME) ./httpapi

bench:
	$(GO) run ./cmd/tokenbench

clean:
	rm -rf bin
