package wsroute_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/wsroute/wsroute"
)

// benchFrames are a small frame (about 100 bytes) and a 4 KB frame whose keys
// come last, so that every lookup scans the whole frame.
var benchFrames = []struct {
	name string
	body string
}{
	{"100B", `{"service":"chat","action":"join","data":{"room":"room1234"},"text":"hello, world","ts":1700000000}`},
	{"4KB", largeFrame(4096)},
}

// benchExprs are the expressions measured, each with the gjson paths that a
// hand-written router would look up: the floor.
var benchExprs = []struct {
	name  string
	expr  string
	paths []string
}{
	{"unwrapped", `$request.body.action`, []string{"action"}},
	{"wrapped", `${request.body.action}`, []string{"action"}},
	{"multi", `${request.body.service}/${request.body.action}`, []string{"service", "action"}},
	{"nested", `$request.body.data.room`, []string{"data.room"}},
}

func largeFrame(n int) string {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < n-80; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item %d","tags":["x","y"],"ok":true}`, i, i)
	}
	b.WriteString(`],"service":"chat","data":{"room":"room1234"},"action":"join"}`)
	return b.String()
}

// BenchmarkEvaluate measures Evaluate and EvaluateString, validation
// included, against the floor: gjson's validation and lookups alone.
func BenchmarkEvaluate(b *testing.B) {
	for _, f := range benchFrames {
		body := f.body
		buf := []byte(body)
		for _, x := range benchExprs {
			e := wsroute.MustParseExpression(x.expr)
			prefix := f.name + "/" + x.name + "/"
			b.Run(prefix+"Evaluate", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(buf)))
				for b.Loop() {
					if _, ok := e.Evaluate(buf); !ok {
						b.Fatal("not JSON")
					}
				}
			})
			b.Run(prefix+"EvaluateString", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if _, ok := e.EvaluateString(body); !ok {
						b.Fatal("not JSON")
					}
				}
			})
			b.Run(prefix+"floor-ValidBytes+GetBytes", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(buf)))
				for b.Loop() {
					if !gjson.ValidBytes(buf) {
						b.Fatal("not JSON")
					}
					for _, p := range x.paths {
						_ = gjson.GetBytes(buf, p)
					}
				}
			})
			b.Run(prefix+"floor-Valid+Get", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if !gjson.Valid(body) {
						b.Fatal("not JSON")
					}
					for _, p := range x.paths {
						_ = gjson.Get(body, p)
					}
				}
			})
		}
	}
}
