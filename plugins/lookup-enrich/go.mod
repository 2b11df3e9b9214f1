module weir.dev/plugins/lookup-enrich

go 1.25

require weir.dev/plugin v0.0.0

replace weir.dev/plugin => ../../guest-sdk/go
