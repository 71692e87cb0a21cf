module github.com/wsroute/wsroute/bench

go 1.25.0

require (
	github.com/coder/websocket v1.8.15
	github.com/gorilla/websocket v1.5.3
	github.com/olahol/melody v1.1.4
	github.com/tidwall/gjson v1.20.1
	github.com/wsroute/wsroute v0.0.0-00010101000000-000000000000
	go.uber.org/goleak v1.3.0
)

require (
	github.com/tidwall/match v1.1.1 // indirect
	github.com/tidwall/pretty v1.2.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
)

replace github.com/wsroute/wsroute => ../
