# tokenledger: make run | make test | make build | make bench
GO ?= go
BIN := bin/tokenledger

.PHONY: run test build bench fuzz vet clean

build:
	$(GO) build -o $(BIN) ./cmd/tokenledger

run: build
	./$(BIN) serve

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 9m ./...

bench:
	$(GO) run ./cmd/tokenbench

clean:
	rm -rf bin
