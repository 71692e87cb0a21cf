package wsroute_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

func TestExpressionMessage(t *testing.T) {
	for _, tt := range []struct {
		expr, key string
		fields    map[string]any
		want      string // JSON; "" means an error is expected
	}{
		{"$request.body.action", "join", map[string]any{"room": "r1"}, `{"action":"join","room":"r1"}`},
		{"$request.body.action", "join", map[string]any{"action": "other"}, `{"action":"join"}`},
		{"${request.body.action}", "join", nil, `{"action":"join"}`},
		{"$request.body.type", "ping", nil, `{"type":"ping"}`},
		{"${request.body.service}/${request.body.action}", "chat/join", nil, `{"service":"chat","action":"join"}`},
		{"${request.body.service}/${request.body.action}", "a/b/c", nil, `{"service":"a","action":"b/c"}`},
		{"${request.body.service}/${request.body.action}", "nochar", nil, ""},
		{"$request.body.data.room", "r1", map[string]any{"data": map[string]any{"x": 1}}, `{"data":{"room":"r1","x":1}}`},
		{"$request.body.items[1].kind", "book", nil, `{"items":[null,{"kind":"book"}]}`},
		{"$request.body['a.b']", "k", nil, `{"a.b":"k"}`},
		{"v1-${request.body.op}", "v1-get", nil, `{"op":"get"}`},
		{"v1-${request.body.op}", "v2-get", nil, ""},
		{"action", "action", map[string]any{"x": true}, `{"x":true}`},
		{"action", "other", nil, ""},
		{"${request.body.a}${request.body.a}", "xy", nil, ""},
		{"${request.body.a}${request.body.a}", "xx", nil, `{"a":"x"}`},
		{"$request.body", "hello", nil, `"hello"`},
		{"$request.body", "hello", map[string]any{"x": 1}, ""},
		{"$request.body.action", "big", map[string]any{"id": int64(9007199254740993), "f": 1.5}, `{"action":"big","f":1.5,"id":9007199254740993}`},
	} {
		t.Run(tt.expr+"→"+tt.key, func(t *testing.T) {
			e := wsroute.MustParseExpression(tt.expr)
			got, err := e.Message(tt.key, tt.fields)
			if tt.want == "" {
				require.Error(t, err, "got %s", got)
				assert.Contains(t, err.Error(), tt.key)
				return
			}
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(got))
			key, ok := e.Evaluate(got)
			assert.True(t, ok)
			assert.Equal(t, tt.key, key)
		})
	}
	big, err := wsroute.MustParseExpression("$request.body.action").Message("x", map[string]any{"id": int64(9007199254740993)})
	require.NoError(t, err)
	assert.Contains(t, string(big), `"id":9007199254740993`, "an int64 is not rounded through a float64")
	_, err = wsroute.MustParseExpression("$request.body.action").Message("x", map[string]any{"f": func() {}})
	assert.Error(t, err)
}
