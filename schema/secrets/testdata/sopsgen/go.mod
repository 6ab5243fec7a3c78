module sopsgen

go 1.26.8

require (
	filippo.io/age v1.3.2
	github.com/berth-dev/berth v0.0.0
	github.com/getsops/sops/v3 v3.13.3
)

replace github.com/berth-dev/berth => ../../../..
