package wsroute

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds a slow reference evaluator built on encoding/json, and the
// fuzz targets that hold the fast path (gjson) to it. The reference reads only
// the parsed form of an expression (literal text, and each step's unescaped
// name or index), never the gjson paths compiled from it.

// refValue is a decoded JSON value that keeps object members in document
// order, duplicates included.
type refValue struct {
	kind  byte   // 's' string, 'n' number, 't' true, 'f' false, '0' null, 'a' array, 'o' object
	text  string // a string's value or a number's text
	elems []refValue
	keys  []string
	vals  []refValue
}

// refDecode decodes body as the contract defines JSON: valid UTF-8 that
// encoding/json accepts (which limits nesting to 10,000 levels).
func refDecode(body []byte) (refValue, bool) {
	if !utf8.Valid(body) || !json.Valid(body) {
		return refValue{}, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := refParse(dec)
	if err != nil {
		panic(fmt.Sprintf("json.Valid accepted %q but decoding failed: %v", body, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		panic(fmt.Sprintf("json.Valid accepted %q with trailing data", body))
	}
	return v, true
}

func refParse(dec *json.Decoder) (refValue, error) {
	tok, err := dec.Token()
	if err != nil {
		return refValue{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		v := refValue{kind: 'a'}
		if t == '{' {
			v.kind = 'o'
		}
		for dec.More() {
			if v.kind == 'o' {
				k, err := dec.Token()
				if err != nil {
					return v, err
				}
				v.keys = append(v.keys, k.(string))
			}
			e, err := refParse(dec)
			if err != nil {
				return v, err
			}
			if v.kind == 'o' {
				v.vals = append(v.vals, e)
			} else {
				v.elems = append(v.elems, e)
			}
		}
		_, err := dec.Token() // the closing delimiter
		return v, err
	case string:
		return refValue{kind: 's', text: t}, nil
	case json.Number:
		return refValue{kind: 'n', text: string(t)}, nil
	case bool:
		if t {
			return refValue{kind: 't'}, nil
		}
		return refValue{kind: 'f'}, nil
	case nil:
		return refValue{kind: '0'}, nil
	}
	return refValue{}, fmt.Errorf("unexpected token %v", tok)
}

// refEvaluate is Evaluate, the slow and obvious way.
func refEvaluate(e *Expression, body []byte) (string, bool) {
	root, ok := refDecode(body)
	if !ok {
		return "", false
	}
	var b strings.Builder
	for _, p := range e.parts {
		if !p.isVar {
			b.WriteString(p.lit)
			continue
		}
		if v, ok := refWalk(root, p.steps); ok {
			refStringify(&b, v)
		}
	}
	return b.String(), true
}

// refWalk follows steps from v: names select the first member of that name
// of an object, indices an element of an array.
func refWalk(v refValue, steps []pathStep) (refValue, bool) {
	for _, st := range steps {
		switch {
		case st.isIndex && v.kind == 'a':
			i, err := strconv.ParseUint(st.name, 10, 64)
			if err != nil || i >= uint64(len(v.elems)) {
				return refValue{}, false
			}
			v = v.elems[i]
		case !st.isIndex && v.kind == 'o':
			i := 0
			for i < len(v.keys) && v.keys[i] != st.name {
				i++
			}
			if i == len(v.keys) {
				return refValue{}, false
			}
			v = v.vals[i]
		default:
			return refValue{}, false
		}
	}
	return v, true
}

func refStringify(b *strings.Builder, v refValue) {
	switch v.kind {
	case 's', 'n':
		b.WriteString(v.text)
	case 't':
		b.WriteString("true")
	case 'f':
		b.WriteString("false")
	case 'a':
		b.WriteByte('[')
		for i, e := range v.elems {
			if i > 0 {
				b.WriteString(", ")
			}
			refStringify(b, e)
		}
		b.WriteByte(']')
	case 'o':
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k)
			b.WriteByte('=')
			refStringify(b, v.vals[i])
		}
		b.WriteByte('}')
	}
}

// checkAgainstReference asserts that Evaluate and EvaluateString agree with
// refEvaluate on body, and that Evaluate's key survives the reuse of body.
func checkAgainstReference(t *testing.T, e *Expression, body []byte) {
	t.Helper()
	want, wantOK := refEvaluate(e, body)
	if got, ok := e.EvaluateString(string(body)); got != want || ok != wantOK {
		t.Fatalf("%q.EvaluateString(%q) = %q, %v; reference says %q, %v", e, body, got, ok, want, wantOK)
	}
	buf := bytes.Clone(body)
	got, ok := e.Evaluate(buf)
	if got != want || ok != wantOK {
		t.Fatalf("%q.Evaluate(%q) = %q, %v; reference says %q, %v", e, body, got, ok, want, wantOK)
	}
	for i := range buf {
		buf[i] ^= 0xff
	}
	if got != want {
		t.Fatalf("%q.Evaluate(%q): key changed to %q when the body buffer was overwritten", e, body, got)
	}
}

// evaluateSeeds are expressions and bodies for the fuzzers' seed corpora.
var evaluateSeeds = struct{ exprs, bodies []string }{
	exprs: []string{
		`$request.body.action`,
		`${request.body.action}`,
		`${request.body.service}/${request.body.action}`,
		`${request.body.action}-${request.body.nope}`,
		`action`,
		`\$default`,
		`$request.body.data.room`,
		`${request.body}`,
		`$request.body[0]`,
		`$request.body.a[1].b`,
		`$request.body.0`,
		`$request.body['0']`,
		`$request.body['a.b']["@reverse"]`,
		`$request.body['*']`,
		`$request.body['a|b']`,
		`$request.body['#']`,
		`$request.body['\\']`,
		`$request.body['!true']`,
		`$request.body['']`,
		`$request.body['\u00e9']`,
		`$request.body.é`,
		`<${request.body.a}|${request.body.b}>`,
	},
	bodies: []string{
		`{"service":"chat","action":"join","data":{"room":"room1234"}}`,
		`{"action":"first","action":"second"}`,
		`{"a":"s","a":{"b":1}}`,
		`{"a":[{"b":1},{"b":[true,false,null]}],"0":"zero"}`,
		`["join",{"a":1}]`,
		`[[1],[2]]`,
		`"{\"action\":\"join\"}"`,
		`1e999`,
		`-0.0E+00`,
		`null`,
		`{"a.b":{"@reverse":"m"},"*":"star","a|b":"pipe","#":"hash","\\":"bs","!true":"lit","":"empty"}`,
		`{"é":"acute","a\u0063tion":"esc","m":"\ud800x\udc00\ud83d\ude00"}`,
		`{"a":{"x":"y","z":[1,"2",{"k":null}]},"b":"say \"hi\""}`,
		`{"action":"${request.body.b}","b":"no"}`,
		` { "action" : "join" } `,
		"{\"a\":\"\xff\"}",
		``,
		` `,
		`{"a":`,
		`[[[[[[[[[[]]]]]]]]]]`,
	},
}

func FuzzEvaluate(f *testing.F) {
	for _, e := range evaluateSeeds.exprs {
		for _, b := range evaluateSeeds.bodies {
			f.Add(e, []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, expr string, body []byte) {
		if e, err := ParseExpression(expr); err == nil {
			checkAgainstReference(t, e, body)
		}
		// The mutator changes bodies far more than expressions, so also read
		// the whole body and paths to its values, under keys it made up.
		root, ok := refDecode(body)
		if !ok {
			return
		}
		for _, x := range append([]string{"${request.body}"}, pathsTo(root, 16)...) {
			checkAgainstReference(t, MustParseExpression(x), body)
		}
	})
}

func FuzzParseExpression(f *testing.F) {
	for _, e := range evaluateSeeds.exprs {
		f.Add(e)
	}
	for _, e := range []string{``, `${request.body.`, `$request.header.x`, `${stageVariables.x}`,
		`$`, `a\b`, `$request.body[01]`, `$request.body['\ud800']`, "\xff", `${`, `}`} {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		e, err := ParseExpression(expr)
		if err != nil {
			var ee *ExpressionError
			if !errors.As(err, &ee) {
				t.Fatalf("ParseExpression(%q): error of type %T", expr, err)
			}
			if ee.Expr != expr || ee.Offset < 0 || ee.Offset > len(expr) || ee.Msg == "" {
				t.Fatalf("ParseExpression(%q): bad error %#v", expr, ee)
			}
			if !strings.HasPrefix(err.Error(), "wsroute: invalid route selection expression ") {
				t.Fatalf("ParseExpression(%q): error %q", expr, err)
			}
			return
		}
		if e.String() != expr {
			t.Fatalf("ParseExpression(%q).String() = %q", expr, e.String())
		}
		again, err := ParseExpression(e.String())
		if err != nil || !reflect.DeepEqual(e, again) {
			t.Fatalf("ParseExpression(%q) does not round-trip: %v", expr, err)
		}
		// Written in another form, the same expression must parse to the
		// same parts.
		canon := canonical(e)
		c, err := ParseExpression(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, expr, err)
		}
		if !reflect.DeepEqual(e.parts, c.parts) {
			t.Fatalf("canonical form %q of %q parses differently:\n%#v\n%#v", canon, expr, e.parts, c.parts)
		}
		if e.vars == 0 {
			if got, ok := e.EvaluateString(`{}`); !ok || got != e.parts[0].lit {
				t.Fatalf("static %q evaluates to %q, %v", expr, got, ok)
			}
		}
		checkAgainstReference(t, e, []byte(`{"a":[1,{"b":"c"}],"":{"":null}}`))
	})
}

// canonical writes e back in one canonical form: literal text with "\" and
// "$" escaped, and every variable wrapped, with each name quoted.
func canonical(e *Expression) string {
	var b strings.Builder
	for _, p := range e.parts {
		if !p.isVar {
			b.WriteString(strings.NewReplacer(`\`, `\\`, `$`, `\$`).Replace(p.lit))
			continue
		}
		b.WriteString("${request.body")
		for _, st := range p.steps {
			if st.isIndex {
				b.WriteString("[" + st.name + "]")
				continue
			}
			b.WriteString(`['`)
			b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(st.name))
			b.WriteString(`']`)
		}
		b.WriteString("}")
	}
	return b.String()
}

// pathsTo returns expressions that read up to limit values of v, depth first,
// with every name quoted.
func pathsTo(v refValue, limit int) []string {
	var out []string
	var walk func(v refValue, path string)
	walk = func(v refValue, path string) {
		if len(out) == limit {
			return
		}
		if path != "" {
			out = append(out, "${request.body"+path+"}")
		}
		for i, e := range v.elems {
			walk(e, fmt.Sprintf("%s[%d]", path, i))
		}
		for i, k := range v.keys {
			walk(v.vals[i], path+"['"+strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(k)+"']")
		}
	}
	walk(v, "")
	return out
}

func TestReferenceAgreesOnSeeds(t *testing.T) {
	for _, expr := range evaluateSeeds.exprs {
		e := MustParseExpression(expr)
		for _, body := range evaluateSeeds.bodies {
			checkAgainstReference(t, e, []byte(body))
		}
		for _, body := range []string{nestedArrays(10000), nestedArrays(10001)} {
			checkAgainstReference(t, e, []byte(body))
		}
	}
}

func nestedArrays(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

// TestReferenceRandom holds the fast path to the reference on generated
// bodies whose keys are full of characters special to gjson, and on
// expressions that mostly reach into them.
func TestReferenceRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		v := randValue(rng, 4)
		body := encodeRef(rng, v)
		expr := randExpr(rng, v)
		e, err := ParseExpression(expr)
		if err != nil {
			t.Fatalf("generated expression %q: %v", expr, err)
		}
		checkAgainstReference(t, e, []byte(body))
	}
}

var randKeys = []string{"a", "b", "0", "1", "", "a.b", "*", "a*", "?", "|", "#", "#(a==1)",
	"@reverse", "@this", "!true", "\\", "[0]", "{a}", "..", "é", "😀", "a b", "'", "\"", "$", "=", "a\nb"}

func randValue(rng *rand.Rand, depth int) refValue {
	k := rng.IntN(9)
	if depth == 0 {
		k %= 6
	}
	switch k {
	case 0:
		return refValue{kind: 's', text: randKeys[rng.IntN(len(randKeys))]}
	case 1:
		return refValue{kind: 'n', text: []string{"0", "-1", "1.50", "1e999", "-0.0E+00", "12345678901234567890"}[rng.IntN(6)]}
	case 2:
		return refValue{kind: 't'}
	case 3:
		return refValue{kind: 'f'}
	case 4:
		return refValue{kind: '0'}
	case 5:
		return refValue{kind: 's', text: `x"y\z` + "\u2028\x01"}
	case 6:
		v := refValue{kind: 'a'}
		for range rng.IntN(4) {
			v.elems = append(v.elems, randValue(rng, depth-1))
		}
		return v
	default:
		v := refValue{kind: 'o'}
		for range rng.IntN(5) {
			v.keys = append(v.keys, randKeys[rng.IntN(len(randKeys))])
			v.vals = append(v.vals, randValue(rng, depth-1))
		}
		return v
	}
}

// encodeRef writes v as JSON, escaping strings in varied ways.
func encodeRef(rng *rand.Rand, v refValue) string {
	var b strings.Builder
	ws := func() {
		if rng.IntN(4) == 0 {
			b.WriteString([]string{" ", "\n", "\t", "\r\n "}[rng.IntN(4)])
		}
	}
	var enc func(v refValue)
	enc = func(v refValue) {
		ws()
		switch v.kind {
		case 's':
			encodeString(rng, &b, v.text)
		case 'n':
			b.WriteString(v.text)
		case 't':
			b.WriteString("true")
		case 'f':
			b.WriteString("false")
		case '0':
			b.WriteString("null")
		case 'a':
			b.WriteByte('[')
			for i, e := range v.elems {
				if i > 0 {
					b.WriteByte(',')
				}
				enc(e)
			}
			ws()
			b.WriteByte(']')
		case 'o':
			b.WriteByte('{')
			for i, k := range v.keys {
				if i > 0 {
					b.WriteByte(',')
				}
				ws()
				encodeString(rng, &b, k)
				ws()
				b.WriteByte(':')
				enc(v.vals[i])
			}
			ws()
			b.WriteByte('}')
		}
		ws()
	}
	enc(v)
	return b.String()
}

func encodeString(rng *rand.Rand, b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || rng.IntN(8) == 0:
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(b, `\u%04x\u%04X`, r1, r2)
			} else {
				fmt.Fprintf(b, `\u%04x`, r)
			}
		case r == '/' && rng.IntN(2) == 0:
			b.WriteString(`\/`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// randExpr returns an expression of one to three variables and literal text,
// whose paths mostly follow v.
func randExpr(rng *rand.Rand, v refValue) string {
	var b strings.Builder
	for i := range 1 + rng.IntN(3) {
		if i > 0 || rng.IntN(4) == 0 {
			b.WriteString([]string{"/", `\$`, ":", `\\`, " "}[rng.IntN(5)])
		}
		wrapped := i > 0 || rng.IntN(2) == 0
		if wrapped {
			b.WriteString("${request.body")
		} else {
			b.WriteString("$request.body")
		}
		cur := v
		for range rng.IntN(5) {
			switch {
			case cur.kind == 'a' && len(cur.elems) > 0 && rng.IntN(5) > 0:
				j := rng.IntN(len(cur.elems))
				fmt.Fprintf(&b, "[%d]", j)
				cur = cur.elems[j]
			case cur.kind == 'o' && len(cur.keys) > 0 && rng.IntN(5) > 0:
				j := rng.IntN(len(cur.keys))
				writeName(rng, &b, cur.keys[j])
				cur = cur.vals[j]
			default:
				if rng.IntN(2) == 0 {
					fmt.Fprintf(&b, "[%d]", rng.IntN(3))
				} else {
					writeName(rng, &b, randKeys[rng.IntN(len(randKeys))])
				}
				cur = refValue{}
			}
		}
		if wrapped {
			b.WriteString("}")
		}
	}
	return b.String()
}

func writeName(rng *rand.Rand, b *strings.Builder, name string) {
	dotted := name != ""
	for i := 0; i < len(name); i++ {
		dotted = dotted && isNameChar(name[i])
	}
	if dotted && rng.IntN(2) == 0 {
		b.WriteString("." + name)
		return
	}
	q := []string{`'`, `"`}[rng.IntN(2)]
	b.WriteString("[" + q)
	for _, r := range name {
		switch {
		case string(r) == q || r == '\\':
			b.WriteString(`\` + string(r))
		case r == '\n':
			b.WriteString(`\n`)
		case rng.IntN(8) == 0:
			r1, r2 := utf16.EncodeRune(r)
			if r1 == utf8.RuneError {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(q + "]")
}
