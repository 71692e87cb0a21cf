package wsroute_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// awsBody is the frame of AWS's documented examples.
const awsBody = `{"service":"chat","action":"join","data":{"room":"room1234"}}`

// specialKeys are member names that mean something to gjson, JSONPath or the
// expression grammar; each must still be read literally.
const specialBody = `{
	"a.b": "dot", "*": "star", "a*": "star2", "?": "question", "a?c": "question2",
	"a|b": "pipe", "#": "hash", "#(x==1)": "query", "a#": "hash2", "@reverse": "modifier",
	"@this": "this", "a@b": "at", "\\": "backslash", "a\\.b": "escaped dot",
	"!true": "literal", "!": "bang", "a=b": "equals", "<": "lt", ">": "gt",
	"%": "percent", "a!%b": "notlike", "~": "tilde", "[0]": "brackets",
	"{a}": "braces", "..": "dots", ".": "dot1", "a b": "space", "'": "apos",
	"\"": "quote", "$": "dollar", "${x}": "dollar brace", ":": "colon", ",": "comma",
	"": "empty", "0": "zero key", "a\tb": "tab", "é": "e-acute", "😀": "smile",
	"ключ": "значение", "a\u0000b": "nul"
}`

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name string
		expr string
		body string
		want string // ok is true unless notJSON
		// notJSON marks bodies that are not JSON: Evaluate reports ok=false.
		notJSON bool
	}{
		// AWS's documented examples.
		{name: "aws unwrapped", expr: `$request.body.action`, body: awsBody, want: "join"},
		{name: "aws wrapped", expr: `${request.body.action}`, body: awsBody, want: "join"},
		{name: "aws several variables", expr: `${request.body.service}/${request.body.action}`, body: awsBody, want: "chat/join"},
		{name: "aws missing path", expr: `${request.body.action}-${request.body.nope}`, body: awsBody, want: "join-"},
		{name: "aws static", expr: `action`, body: awsBody, want: "action"},
		{name: "aws escaped dollar", expr: `\$default`, body: awsBody, want: "$default"},
		{name: "aws nested", expr: `$request.body.data.room`, body: awsBody, want: "room1234"},

		// Forms.
		{name: "unwrapped then literal", expr: `$request.body.service/x`, body: awsBody, want: "chat/x"},
		{name: "unwrapped names take dashes", expr: `$request.body.a-b`, body: `{"a-b":"dash","a":"x"}`, want: "dash"},
		{name: "unwrapped ends at non-name", expr: `$request.body.action:v2`, body: awsBody, want: "join:v2"},
		{name: "unwrapped ends after bracket", expr: `$request.body.a[0]x`, body: `{"a":["y"]}`, want: "yx"},
		{name: "two unwrapped juxtaposed", expr: `$request.body.service$request.body.action`, body: awsBody, want: "chatjoin"},
		{name: "literal around wrapped", expr: `pre-${request.body.action}-post`, body: awsBody, want: "pre-join-post"},
		{name: "escaped backslash", expr: `a\\b`, body: awsBody, want: `a\b`},
		{name: "escaped dollar then brace", expr: `\${request.body.action}`, body: awsBody, want: "${request.body.action}"},
		{name: "braces in literal", expr: `{}}{`, body: awsBody, want: "{}}{"},
		{name: "whole body", expr: `${request.body}`, body: awsBody, want: "{service=chat, action=join, data={room=room1234}}"},
		{name: "whole body unwrapped", expr: `$request.body`, body: `  "join"  `, want: "join"},
		{name: "all missing", expr: `${request.body.x}${request.body.y}`, body: awsBody, want: ""},
		{name: "many variables", expr: strings.Repeat(`${request.body.action},`, 12), body: awsBody, want: strings.Repeat("join,", 12)},

		// Paths.
		{name: "index", expr: `$request.body.a[1]`, body: `{"a":["x","y"]}`, want: "y"},
		{name: "index out of range", expr: `$request.body.a[2]`, body: `{"a":["x","y"]}`, want: ""},
		{name: "huge index", expr: `$request.body.a[18446744073709551616]`, body: `{"a":["x","y"]}`, want: ""},
		{name: "index of index", expr: `$request.body[1][0]`, body: `[[1],[2,3]]`, want: "2"},
		{name: "index on object is missing", expr: `$request.body.a[0]`, body: `{"a":{"0":"zero"}}`, want: ""},
		{name: "numeric name on object", expr: `$request.body.a.0`, body: `{"a":{"0":"zero"}}`, want: "zero"},
		{name: "numeric name on array is missing", expr: `$request.body.a.0`, body: `{"a":["x"]}`, want: ""},
		{name: "quoted numeric name on array is missing", expr: `$request.body.a['0']`, body: `{"a":["x"]}`, want: ""},
		{name: "name on string is missing", expr: `$request.body.action.x`, body: awsBody, want: ""},
		{name: "name on number is missing", expr: `$request.body.n.x`, body: `{"n":1}`, want: ""},
		{name: "double-quoted name", expr: `$request.body["x y"]`, body: `{"x y":"space"}`, want: "space"},
		{name: "quoted name with brace", expr: `${request.body['a}b']}`, body: `{"a}b":"brace"}`, want: "brace"},
		{name: "quoted escapes", expr: `$request.body['it\'s "\u00e9" \\ \/ \n']`, body: `{"it's \"é\" \\ / \n":"ok"}`, want: "ok"},
		{name: "quoted surrogate pair", expr: `$request.body['\ud83d\ude00']`, body: `{"😀":"smile"}`, want: "smile"},
		{name: "escaped key in body", expr: `$request.body.action`, body: `{"a\u0063tion":"join"}`, want: "join"},
		{name: "unicode name", expr: `$request.body.ключ`, body: specialBody, want: "значение"},
		{name: "emoji name", expr: `$request.body.😀`, body: specialBody, want: "smile"},
		{name: "nul in name", expr: `$request.body['a\u0000b']`, body: specialBody, want: "nul"},
		{name: "tab in name", expr: `$request.body['a\tb']`, body: specialBody, want: "tab"},

		// Values.
		{name: "string with escaped quotes", expr: `$request.body.m`, body: `{"m":"say \"hi\""}`, want: `say "hi"`},
		{name: "string with escapes", expr: `$request.body.m`, body: `{"m":"a\\b\/c\n\t\u00e9\ud83d\ude00"}`, want: "a\\b/c\n\té😀"},
		{name: "lone surrogate", expr: `$request.body.m`, body: `{"m":"\ud800x\udc00"}`, want: "\uFFFDx\uFFFD"},
		{name: "unicode value", expr: `$request.body.m`, body: `{"m":"日本語"}`, want: "日本語"},
		{name: "empty string", expr: `$request.body.m`, body: `{"m":""}`, want: ""},
		{name: "integer", expr: `$request.body.n`, body: `{"n":42}`, want: "42"},
		{name: "number text kept", expr: `$request.body.n`, body: `{"n":1.50E+02}`, want: "1.50E+02"},
		{name: "huge number", expr: `$request.body.n`, body: `{"n":1e999}`, want: "1e999"},
		{name: "negative zero", expr: `$request.body.n`, body: `{"n":-0}`, want: "-0"},
		{name: "true", expr: `$request.body.b`, body: `{"b":true}`, want: "true"},
		{name: "false", expr: `$request.body.b`, body: `{"b":false}`, want: "false"},
		{name: "null", expr: `$request.body.b`, body: `{"b":null}`, want: ""},
		{name: "null between text", expr: `<${request.body.b}>`, body: `{"b":null}`, want: "<>"},
		{name: "array", expr: `$request.body.a`, body: `{"a":["x", 1, true, null, "y z"]}`, want: "[x, 1, true, , y z]"},
		{name: "empty array", expr: `$request.body.a`, body: `{"a":[ ]}`, want: "[]"},
		{name: "object", expr: `$request.body.o`, body: `{"o":{"k":"v", "n":1.0, "a":[{"b":null}], "e":{}}}`, want: "{k=v, n=1.0, a=[{b=}], e={}}"},
		{name: "object keys unescaped", expr: `$request.body.o`, body: `{"o":{"a\"b":"c\"d"}}`, want: `{a"b=c"d}`},
		{name: "object with duplicate keys", expr: `$request.body.o`, body: `{"o":{"k":1,"k":2}}`, want: "{k=1, k=2}"},
		{name: "whitespace in containers", expr: `$request.body.o`, body: "{\"o\":\n{ \"a\" :\t[ 1 , 2 ] }\r\n}", want: "{a=[1, 2]}"},
		{name: "substitution runs once", expr: `${request.body.action}`, body: `{"action":"${request.body.x}","x":"no"}`, want: "${request.body.x}"},
		{name: "duplicate keys: first wins", expr: `$request.body.action`, body: `{"action":"first","action":"second"}`, want: "first"},
		{name: "duplicate keys: first wins along a path", expr: `$request.body.a.b`, body: `{"a":"s","a":{"b":1}}`, want: ""},

		// Top-level values that are not objects.
		{name: "array body index", expr: `$request.body[0]`, body: `["join","x"]`, want: "join"},
		{name: "array body name", expr: `$request.body.action`, body: `["join"]`, want: ""},
		{name: "array body numeric name", expr: `$request.body.0`, body: `["join"]`, want: ""},
		{name: "string body name", expr: `$request.body.action`, body: `"{\"action\":\"join\"}"`, want: ""},
		{name: "string body whole", expr: `${request.body}`, body: `"{\"action\":\"join\"}"`, want: `{"action":"join"}`},
		{name: "number body whole", expr: `${request.body}`, body: "\t42\n", want: "42"},
		{name: "null body whole", expr: `${request.body}`, body: `null`, want: ""},
		{name: "true body", expr: `$request.body.a`, body: `true`, want: ""},

		// Special-character keys.
		{name: "key with dot", expr: `$request.body['a.b']`, body: specialBody, want: "dot"},
		{name: "key star", expr: `$request.body['*']`, body: specialBody, want: "star"},
		{name: "key star suffix", expr: `$request.body['a*']`, body: specialBody, want: "star2"},
		{name: "key question", expr: `$request.body['?']`, body: specialBody, want: "question"},
		{name: "key question inside", expr: `$request.body['a?c']`, body: specialBody, want: "question2"},
		{name: "wildcard is literal", expr: `$request.body['a?']`, body: specialBody, want: ""},
		{name: "key pipe", expr: `$request.body['a|b']`, body: specialBody, want: "pipe"},
		{name: "key hash", expr: `$request.body['#']`, body: specialBody, want: "hash"},
		{name: "key query", expr: `$request.body['#(x==1)']`, body: specialBody, want: "query"},
		{name: "key hash suffix", expr: `$request.body['a#']`, body: specialBody, want: "hash2"},
		{name: "key modifier", expr: `$request.body['@reverse']`, body: specialBody, want: "modifier"},
		{name: "key this", expr: `$request.body['@this']`, body: specialBody, want: "this"},
		{name: "key at inside", expr: `$request.body['a@b']`, body: specialBody, want: "at"},
		{name: "key backslash", expr: `$request.body['\\']`, body: specialBody, want: "backslash"},
		{name: "key backslash dot", expr: `$request.body['a\\.b']`, body: specialBody, want: "escaped dot"},
		{name: "key literal", expr: `$request.body['!true']`, body: specialBody, want: "literal"},
		{name: "key bang", expr: `$request.body['!']`, body: specialBody, want: "bang"},
		{name: "key equals", expr: `$request.body['a=b']`, body: specialBody, want: "equals"},
		{name: "key lt", expr: `$request.body['<']`, body: specialBody, want: "lt"},
		{name: "key gt", expr: `$request.body['>']`, body: specialBody, want: "gt"},
		{name: "key percent", expr: `$request.body['%']`, body: specialBody, want: "percent"},
		{name: "key not like", expr: `$request.body['a!%b']`, body: specialBody, want: "notlike"},
		{name: "key tilde", expr: `$request.body['~']`, body: specialBody, want: "tilde"},
		{name: "key brackets", expr: `$request.body['[0]']`, body: specialBody, want: "brackets"},
		{name: "key braces", expr: `$request.body['{a}']`, body: specialBody, want: "braces"},
		{name: "key two dots", expr: `$request.body['..']`, body: specialBody, want: "dots"},
		{name: "key one dot", expr: `$request.body['.']`, body: specialBody, want: "dot1"},
		{name: "key space", expr: `$request.body['a b']`, body: specialBody, want: "space"},
		{name: "key apostrophe", expr: `$request.body["'"]`, body: specialBody, want: "apos"},
		{name: "key quote", expr: `$request.body['"']`, body: specialBody, want: "quote"},
		{name: "key dollar", expr: `$request.body['$']`, body: specialBody, want: "dollar"},
		{name: "key dollar brace", expr: `$request.body['${x}']`, body: specialBody, want: "dollar brace"},
		{name: "key colon", expr: `$request.body[':']`, body: specialBody, want: "colon"},
		{name: "key comma", expr: `$request.body[',']`, body: specialBody, want: "comma"},
		{name: "key empty", expr: `$request.body['']`, body: specialBody, want: "empty"},
		{name: "key zero", expr: `$request.body['0']`, body: specialBody, want: "zero key"},
		{name: "key e-acute", expr: `$request.body.é`, body: specialBody, want: "e-acute"},
		{name: "special keys nested", expr: `$request.body['a.b']['@reverse']['#']`, body: `{"a.b":{"@reverse":{"#":"deep"}}}`, want: "deep"},
		{name: "modifier key not on array", expr: `$request.body.a['@reverse']`, body: `{"a":[1,2]}`, want: ""},

		// Bodies that are not JSON.
		{name: "empty body", expr: `$request.body.action`, body: "", notJSON: true},
		{name: "whitespace body", expr: `$request.body.action`, body: " \t\r\n", notJSON: true},
		{name: "static on empty body", expr: `action`, body: "", notJSON: true},
		{name: "static on text", expr: `action`, body: "hello", notJSON: true},
		{name: "truncated", expr: `$request.body.action`, body: `{"action":"join"`, notJSON: true},
		{name: "trailing text", expr: `$request.body.action`, body: `{"action":"join"} x`, notJSON: true},
		{name: "two values", expr: `$request.body.action`, body: `{} {}`, notJSON: true},
		{name: "single quotes", expr: `$request.body.action`, body: `{'action':'join'}`, notJSON: true},
		{name: "trailing comma", expr: `$request.body.action`, body: `{"action":"join",}`, notJSON: true},
		{name: "leading zero", expr: `$request.body.n`, body: `{"n":01}`, notJSON: true},
		{name: "NaN", expr: `$request.body.n`, body: `{"n":NaN}`, notJSON: true},
		{name: "control character in string", expr: `$request.body.m`, body: "{\"m\":\"a\nb\"}", notJSON: true},
		{name: "bad escape", expr: `$request.body.m`, body: `{"m":"\x"}`, notJSON: true},
		{name: "invalid UTF-8 in value", expr: `$request.body.m`, body: "{\"m\":\"\xff\"}", notJSON: true},
		{name: "invalid UTF-8 in other member", expr: `$request.body.action`, body: "{\"action\":\"join\",\"x\":\"\xc3\x28\"}", notJSON: true},
		{name: "UTF-16 surrogate as UTF-8", expr: `$request.body.m`, body: "{\"m\":\"\xed\xa0\x80\"}", notJSON: true},
		{name: "byte order mark", expr: `$request.body.action`, body: "\uFEFF{\"action\":\"join\"}", notJSON: true},
		{name: "100000 open brackets", expr: `$request.body.action`, body: strings.Repeat("[", 100000), notJSON: true},
		{name: "nested 100000 deep", expr: `$request.body[0]`, body: nested(100000, `"x"`), notJSON: true},
		{name: "nested 10001 deep", expr: `$request.body[0]`, body: nested(10001, ``), notJSON: true},

		// Deep and large bodies that are JSON.
		{name: "nested 10000 deep", expr: `$request.body[0][0]`, body: nested(10000, ``), want: "[" + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + "]"},
		{name: "nested 10000 deep whole", expr: `${request.body}`, body: nested(10000, ``), want: nested(10000, ``)},
		{name: "nested objects 10000 deep", expr: `$request.body.a.a.a`, body: strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000), want: strings.Repeat("{a=", 9997) + "1" + strings.Repeat("}", 9997)},
		{name: "nested 10000 deep with long padding", expr: `$request.body[1]`, body: "[" + nested(9999, ``) + `,"` + strings.Repeat("[", 30000) + `"]`, want: strings.Repeat("[", 30000)},
		{name: "128 KiB body, key last", expr: `$request.body.action`, body: bigBody(128 << 10), want: "join"},
		{name: "128 KiB value", expr: `$request.body.pad`, body: `{"pad":"` + strings.Repeat("x", 128<<10) + `"}`, want: strings.Repeat("x", 128<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := wsroute.ParseExpression(tt.expr)
			require.NoError(t, err)
			wantOK := !tt.notJSON

			got, ok := e.EvaluateString(tt.body)
			assert.Equal(t, wantOK, ok, "EvaluateString ok")
			assert.Equal(t, tt.want, got, "EvaluateString")

			buf := []byte(tt.body)
			got, ok = e.Evaluate(buf)
			assert.Equal(t, wantOK, ok, "Evaluate ok")
			assert.Equal(t, tt.want, got, "Evaluate")
			// The key must not share the caller's buffer, which may be reused.
			for i := range buf {
				buf[i] = '#'
			}
			assert.Equal(t, tt.want, got, "Evaluate after the body buffer was overwritten")
		})
	}
}

// nested returns depth arrays nested in one another around inner.
func nested(depth int, inner string) string {
	return strings.Repeat("[", depth) + inner + strings.Repeat("]", depth)
}

// bigBody returns a JSON object of about n bytes whose "action" comes last.
func bigBody(n int) string {
	var b strings.Builder
	b.WriteString(`{"service":"chat","items":[`)
	for i := 0; b.Len() < n-100; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item \"%d\"","tags":["a","b"],"ok":true,"n":null}`, i, i)
	}
	b.WriteString(`],"data":{"room":"room1234"},"action":"join"}`)
	return b.String()
}

func TestParseExpressionErrors(t *testing.T) {
	tests := []struct {
		name   string
		expr   string
		offset int
		msg    string
	}{
		{"empty", ``, 0, "empty expression"},
		{"name expected at end", `${request.body.`, 15, "expected a name"},
		{"name expected unwrapped", `$request.body.`, 14, "expected a name"},
		{"dot then slash", `$request.body./`, 14, "expected a name"},
		{"dot after unwrapped", `$request.body.action.`, 21, "expected a name"},
		{"wildcard name", `${request.body.*}`, 15, "expected a name"},
		{"unterminated", `${request.body.action`, 0, `unterminated "${"`},
		{"unterminated after text", `a/${request.body`, 2, `unterminated "${"`},
		{"unterminated empty", `${`, 0, `unterminated "${"`},
		{"bad char in wrapped", `${request.body.a b}`, 16, `expected ".", "[" or "}"`},
		{"bad char after bracket", `${request.body[0]x}`, 17, `expected ".", "[" or "}"`},
		{"header", `$request.header.x`, 1, `unsupported variable "$request.header.x": only $request.body may be read`},
		{"context", `$context.requestId`, 1, `unsupported variable "$context.requestId": only $request.body may be read`},
		{"stage variables", `${stageVariables.x}`, 2, `unsupported variable "$stageVariables.x": only $request.body may be read`},
		{"request alone", `$request`, 1, `unsupported variable "$request": only $request.body may be read`},
		{"body prefix", `$request.bodyx`, 1, `unsupported variable "$request.bodyx": only $request.body may be read`},
		{"body dash", `$request.body-x`, 1, `unsupported variable "$request.body-x": only $request.body may be read`},
		{"second variable", `${request.body.a}/$context.x`, 19, `unsupported variable "$context.x": only $request.body may be read`},
		{"bare dollar", `$`, 1, `expected a variable name after "$" (write \$ for a literal "$")`},
		{"dollar space", `price $ 5`, 7, `expected a variable name after "$" (write \$ for a literal "$")`},
		{"dollar brace close", `${}`, 2, `expected a variable name after "$" (write \$ for a literal "$")`},
		{"bare backslash", `a\b`, 1, `"\" must be followed by "$" or "\"`},
		{"trailing backslash", `a\`, 1, `"\" must be followed by "$" or "\"`},
		{"open bracket", `$request.body[`, 14, "expected an index or a quoted name"},
		{"bracket name", `$request.body[a]`, 14, "expected an index or a quoted name"},
		{"negative index", `$request.body[-1]`, 14, "expected an index or a quoted name"},
		{"wildcard index", `$request.body[*]`, 14, "expected an index or a quoted name"},
		{"leading zero", `$request.body[01]`, 14, "index with a leading zero"},
		{"unclosed index", `$request.body[0`, 15, `expected "]"`},
		{"index then junk", `$request.body[0a]`, 15, `expected "]"`},
		{"spaces in brackets", `$request.body[ 0 ]`, 14, "expected an index or a quoted name"},
		{"unterminated quote", `$request.body['a`, 14, "unterminated quoted name"},
		{"unterminated quote escape", `$request.body['a\`, 14, "unterminated quoted name"},
		{"mismatched quotes", `$request.body['a"]`, 14, "unterminated quoted name"},
		{"quote unclosed bracket", `$request.body['a'`, 17, `expected "]"`},
		{"bad escape in quote", `$request.body['\x']`, 15, `invalid escape "\\x" in quoted name`},
		{"short unicode escape", `$request.body['\u12']`, 15, `"\u" must be followed by four hexadecimal digits`},
		{"lone high surrogate", `$request.body['\ud800']`, 15, `unpaired surrogate in \u escape`},
		{"lone low surrogate", `$request.body['\udc00x']`, 15, `unpaired surrogate in \u escape`},
		{"invalid UTF-8", "ab\xffc", 2, "invalid UTF-8"},
		{"invalid UTF-8 in quote", "$request.body['\xc3']", 15, "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := wsroute.ParseExpression(tt.expr)
			require.Error(t, err)
			assert.Nil(t, e)
			var ee *wsroute.ExpressionError
			require.True(t, errors.As(err, &ee), "error type %T", err)
			assert.Equal(t, tt.expr, ee.Expr)
			assert.Equal(t, tt.offset, ee.Offset, "offset")
			assert.Equal(t, tt.msg, ee.Msg)
			assert.Equal(t, fmt.Sprintf("wsroute: invalid route selection expression %q at offset %d: %s", tt.expr, tt.offset, tt.msg), err.Error())
		})
	}
}

func TestMustParseExpression(t *testing.T) {
	assert.Equal(t, "$request.body.action", wsroute.MustParseExpression("$request.body.action").String())
	defer func() {
		r := recover()
		err, ok := r.(error)
		require.True(t, ok, "panic value %#v", r)
		var ee *wsroute.ExpressionError
		assert.True(t, errors.As(err, &ee))
		assert.True(t, strings.HasPrefix(err.Error(), "wsroute: "), err.Error())
	}()
	wsroute.MustParseExpression("$context.x")
	t.Fatal("MustParseExpression did not panic")
}

func TestExpressionString(t *testing.T) {
	for _, src := range []string{`$request.body.action`, `${request.body['a.b'][0]}`, `\$default`, `a\\b`, `x${request.body}y`} {
		e := wsroute.MustParseExpression(src)
		assert.Equal(t, src, e.String())
		again, err := wsroute.ParseExpression(e.String())
		require.NoError(t, err)
		assert.Equal(t, e, again)
	}
}

func TestEvaluateAllocations(t *testing.T) {
	body := `{"service":"chat","action":"join","data":{"room":"room1234"},"n":12.5,"t":true,"m":"a\"b"}`
	tests := []struct {
		name        string
		expr        string
		allocString float64 // EvaluateString
		allocBytes  float64 // Evaluate
	}{
		{"unwrapped string", `$request.body.action`, 0, 1},
		{"wrapped string", `${request.body.action}`, 0, 1},
		{"nested string", `$request.body.data.room`, 0, 1},
		{"number", `$request.body.n`, 0, 1},
		{"true", `$request.body.t`, 0, 0},
		{"missing", `$request.body.nope`, 0, 0},
		{"static", `action`, 0, 0},
		{"escaped string", `$request.body.m`, 1, 1},
		{"several variables", `${request.body.service}/${request.body.action}`, 1, 1},
		{"object", `$request.body.data`, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := wsroute.MustParseExpression(tt.expr)
			b := []byte(body)
			assert.Equal(t, tt.allocString, testing.AllocsPerRun(100, func() { e.EvaluateString(body) }), "EvaluateString")
			assert.Equal(t, tt.allocBytes, testing.AllocsPerRun(100, func() { e.Evaluate(b) }), "Evaluate")
		})
	}
}

func TestExpressionConcurrentUse(t *testing.T) {
	e := wsroute.MustParseExpression(`${request.body.service}/${request.body.action}`)
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 1000 {
				k, ok := e.EvaluateString(awsBody)
				if !ok || k != "chat/join" {
					t.Errorf("got %q, %v", k, ok)
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

func ExampleParseExpression() {
	e, err := wsroute.ParseExpression("${request.body.service}/${request.body.action}")
	if err != nil {
		panic(err)
	}
	key, ok := e.Evaluate([]byte(`{"service":"chat","action":"join"}`))
	fmt.Println(key, ok)
	// Output: chat/join true
}

func ExampleParseExpression_error() {
	_, err := wsroute.ParseExpression("$request.header.x")
	fmt.Println(err)
	_, err = wsroute.ParseExpression("${request.body.")
	fmt.Println(err)
	// Output:
	// wsroute: invalid route selection expression "$request.header.x" at offset 1: unsupported variable "$request.header.x": only $request.body may be read
	// wsroute: invalid route selection expression "${request.body." at offset 15: expected a name
}

func ExampleExpression_Evaluate() {
	e := wsroute.MustParseExpression("$request.body.data.room")
	fmt.Println(e.Evaluate([]byte(`{"action":"join","data":{"room":"room1234"}}`)))
	fmt.Println(e.Evaluate([]byte(`{"action":"join"}`)))
	fmt.Println(e.Evaluate([]byte(`not json`)))
	// Output:
	// room1234 true
	//  true
	//  false
}

func ExampleExpression_EvaluateString() {
	e := wsroute.MustParseExpression("$request.body['tags']")
	key, ok := e.EvaluateString(`{"tags":["a", 1, {"k":true}, null]}`)
	fmt.Printf("%q %v\n", key, ok)
	// Output: "[a, 1, {k=true}, ]" true
}

func ExampleMustParseExpression() {
	e := wsroute.MustParseExpression(`\$default`)
	fmt.Println(e.EvaluateString(`{"action":"join"}`))
	fmt.Println(e.EvaluateString(`{"action":`))
	// Output:
	// $default true
	//  false
}

func TestEvaluateNilBody(t *testing.T) {
	for _, src := range []string{`$request.body.action`, `action`} {
		key, ok := wsroute.MustParseExpression(src).Evaluate(nil)
		assert.False(t, ok)
		assert.Empty(t, key)
	}
}
