package wsroute

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Expression is a compiled route selection expression: the rule that turns
// the body of each message into a route key, as in API Gateway WebSocket APIs.
// EXPRESSIONS.md holds the full grammar; in short:
//
//	$request.body.action                            unwrapped variable
//	${request.body.action}                          wrapped variable
//	${request.body.service}/${request.body.action}  variables and literal text
//	$request.body.data['room.id'][0]                quoted names and indices
//	action                                          a static route key
//	\$default                                       an escaped "$"
//
// Only $request.body may be read. A missing value yields the empty string;
// strings yield their unescaped value, numbers their JSON text, null the empty
// string, and arrays and objects an AWS-style rendering (`[a, b]`, `{k=v}`).
//
// An Expression is immutable and safe for concurrent use. Make one with
// [ParseExpression] or [MustParseExpression].
type Expression struct {
	src    string
	parts  []exprPart
	static string // the value of an expression without variables
	vars   int    // how many parts are variables
}

// exprPart is literal text or one variable.
type exprPart struct {
	lit   string     // the literal text, unescaped; when !isVar
	isVar bool       // a $request.body variable
	steps []pathStep // the path after request.body; empty means the whole body
}

// pathStep is one step of a variable's path.
type pathStep struct {
	isIndex bool   // an array index rather than an object member
	name    string // the member name, unescaped; or the index's decimal digits
	gpath   string // the step as a one-component gjson path
}

// maxNesting is how deep arrays and objects may nest in a body that counts as
// JSON. It is encoding/json's limit, and it bounds gjson's recursive validator.
const maxNesting = 10000

// ExpressionError describes why [ParseExpression] refused an expression.
type ExpressionError struct {
	Expr   string // the expression as given
	Offset int    // byte offset into Expr where the problem was found
	Msg    string // what is wrong, lower-case, without the "wsroute:" prefix
}

// Error returns a short message naming the expression and the offset, such as
// `wsroute: invalid route selection expression "${request.body." at offset 15: expected a name`.
func (e *ExpressionError) Error() string {
	return fmt.Sprintf("wsroute: invalid route selection expression %q at offset %d: %s",
		e.Expr, e.Offset, e.Msg)
}

// ParseExpression compiles a route selection expression. It reports an
// *[ExpressionError] for an empty expression, a variable other than
// $request.body, an unterminated "${", a malformed path or quoted name, a "\"
// not followed by "$" or "\", a "$" that starts no variable, and text that is
// not valid UTF-8.
func ParseExpression(expr string) (*Expression, error) {
	p := exprParser{src: expr}
	if err := p.parse(); err != nil {
		return nil, err
	}
	e := &Expression{src: expr, parts: p.parts}
	for _, part := range e.parts {
		if part.isVar {
			e.vars++
		}
	}
	if e.vars == 0 {
		e.static = e.parts[0].lit // literal text is always merged into one part
	}
	return e, nil
}

// MustParseExpression is like [ParseExpression] but panics if the expression
// is invalid. The panic value is the *[ExpressionError], whose message starts
// with "wsroute: ".
func MustParseExpression(expr string) *Expression {
	e, err := ParseExpression(expr)
	if err != nil {
		panic(err)
	}
	return e
}

// String returns the expression's source text, exactly as it was given to
// [ParseExpression]; parsing it again gives an equivalent Expression.
func (e *Expression) String() string { return e.src }

// Evaluate returns the route key that the expression selects from body, and
// ok=false (with an empty key) when body is not JSON: empty, only whitespace,
// not valid UTF-8, malformed, or nested more than 10,000 levels deep. An
// expression without variables still reports ok=false for such bodies.
//
// The key never refers to body's memory, so body may be reused as soon as
// Evaluate returns. Evaluate never copies body; it copies at most the key, and
// allocates nothing for a static expression or a boolean, null or missing
// value.
func (e *Expression) Evaluate(body []byte) (routeKey string, ok bool) {
	s := unsafe.String(unsafe.SliceData(body), len(body))
	if !validJSON(s) {
		return "", false
	}
	key, aliased := e.eval(s)
	if aliased {
		key = strings.Clone(key)
	}
	return key, true
}

// EvaluateString is like [Expression.Evaluate] for a body held in a string.
// The key may be a substring of body (it is when the expression is one
// variable whose value is a string without escapes, or a number), so it keeps
// body's memory alive. It allocates nothing in that case nor for an
// expression without variables; it allocates the key when the key is built
// (several parts, escapes to resolve, an array or an object to render).
func (e *Expression) EvaluateString(body string) (routeKey string, ok bool) {
	if !validJSON(body) {
		return "", false
	}
	key, _ := e.eval(body)
	return key, true
}

// evaluateText is EvaluateString for a body already known to be valid
// UTF-8, as the router's text frames are: it skips the second UTF-8 pass.
func (e *Expression) evaluateText(body string) (routeKey string, ok bool) {
	if !wellFormedJSON(body) {
		return "", false
	}
	key, _ := e.eval(body)
	return key, true
}

// validJSON reports whether s is one JSON value (RFC 8259) in valid UTF-8,
// nested at most maxNesting deep.
func validJSON(s string) bool {
	return wellFormedJSON(s) && utf8.ValidString(s)
}

// wellFormedJSON is validJSON without the UTF-8 check.
func wellFormedJSON(s string) bool {
	// A valid JSON text nested deeper than maxNesting has at least
	// 2*(maxNesting+1) bytes, so shorter texts skip the depth scan; gjson's
	// validator then recurses at most len(s) deep.
	if len(s) >= 2*(maxNesting+1) && !nestingWithin(s, maxNesting) {
		return false
	}
	return gjson.Valid(s)
}

// nestingWithin reports whether the arrays and objects of s, read as JSON,
// nest at most limit deep. Malformed text gives an arbitrary answer.
func nestingWithin(s string, limit int) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
			if depth > limit {
				return false
			}
		case '}', ']':
			depth--
		}
	}
	return true
}

// eval evaluates the expression on a valid JSON body. aliased reports that
// the key is a substring of body.
func (e *Expression) eval(body string) (key string, aliased bool) {
	if e.vars == 0 {
		return e.static, false
	}
	if len(e.parts) == 1 {
		return lookup(body, e.parts[0].steps)
	}
	var buf [8]string
	vals := buf[:0]
	n := 0
	for i := range e.parts {
		v := e.parts[i].lit
		if e.parts[i].isVar {
			v, _ = lookup(body, e.parts[i].steps)
		}
		vals = append(vals, v)
		n += len(v)
	}
	if n == 0 {
		return "", false
	}
	b := make([]byte, 0, n)
	for _, v := range vals {
		b = append(b, v...)
	}
	return unsafe.String(unsafe.SliceData(b), len(b)), false
}

// lookup returns the stringified value at steps in the valid JSON body, or ""
// when there is none. aliased reports that the value is a substring of body.
func lookup(body string, steps []pathStep) (v string, aliased bool) {
	if len(steps) == 0 {
		return stringify(strings.Trim(body, " \t\r\n"))
	}
	cur := body
	var res gjson.Result
	for i := range steps {
		// gjson matches a numeric component against an array index or an
		// object member alike: check the container's kind first, so that names
		// only match members and indices only elements. The check also keeps
		// gjson away from scalars: it starts at the first "{" or "[" it sees,
		// even one inside a top-level string.
		want := byte('{')
		if steps[i].isIndex {
			want = '['
		}
		if firstNonSpace(cur) != want {
			return "", false
		}
		res = gjson.Get(cur, steps[i].gpath)
		if !res.Exists() {
			return "", false
		}
		cur = res.Raw
	}
	switch res.Type {
	case gjson.String:
		// Str is Raw without its quotes unless an escape was resolved, which
		// always makes it shorter.
		return res.Str, len(res.Str) == len(res.Raw)-2
	case gjson.Number:
		return res.Raw, true
	case gjson.True:
		return "true", false
	case gjson.False:
		return "false", false
	case gjson.JSON:
		return stringifyContainer(res.Raw), false
	}
	return "", false // null
}

func firstNonSpace(s string) byte {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
		default:
			return s[i]
		}
	}
	return 0
}

// stringify renders one valid JSON value without surrounding whitespace.
// aliased reports that the result is a substring of raw.
func stringify(raw string) (v string, aliased bool) {
	switch raw[0] {
	case '"':
		inner := raw[1 : len(raw)-1]
		if strings.IndexByte(inner, '\\') < 0 {
			return inner, true
		}
		b := appendUnescaped(make([]byte, 0, len(inner)), inner)
		return unsafe.String(unsafe.SliceData(b), len(b)), false
	case '{', '[':
		return stringifyContainer(raw), false
	case 't':
		return "true", false
	case 'f':
		return "false", false
	case 'n':
		return "", false
	}
	return raw, true // a number
}

// stringifyContainer renders a valid JSON array or object: elements joined by
// ", " inside "[]", members as k=v joined by ", " inside "{}", strings
// unescaped, null as nothing. It loops rather than recurses, so nesting depth
// costs no stack.
func stringifyContainer(raw string) string {
	b := make([]byte, 0, len(raw)+len(raw)/4)
	for i := 0; i < len(raw); {
		c := raw[i]
		switch c {
		case ' ', '\t', '\r', '\n':
			i++
		case '{', '}', '[', ']':
			b = append(b, c)
			i++
		case ',':
			b = append(b, ',', ' ')
			i++
		case ':':
			b = append(b, '=')
			i++
		case '"':
			j := i + 1
			for raw[j] != '"' {
				if raw[j] == '\\' {
					j++
				}
				j++
			}
			b = appendUnescaped(b, raw[i+1:j])
			i = j + 1
		case 'n':
			i += len("null")
		default: // a number, true or false
			j := i + 1
			for j < len(raw) && !isValueEnd(raw[j]) {
				j++
			}
			b = append(b, raw[i:j]...)
			i = j
		}
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func isValueEnd(c byte) bool {
	switch c {
	case ',', ']', '}', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

// appendUnescaped appends the unescaped contents of a valid JSON string (no
// quotes) to b. Like encoding/json, it turns an unpaired surrogate escape into
// U+FFFD.
func appendUnescaped(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] != '\\' {
			j++
		}
		b = append(b, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
		if c, ok := unescapeByte(s[i+1]); ok {
			b = append(b, c)
			i += 2
			continue
		}
		r, n, _ := unescapeRune(s[i:])
		b = utf8.AppendRune(b, r)
		i += n
	}
	return b
}

// unescapeByte returns the byte that "\" c stands for in JSON, but for \u.
func unescapeByte(c byte) (byte, bool) {
	switch c {
	case '"', '\\', '/':
		return c, true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	}
	return 0, false
}

// unescapeRune decodes the \u escape at the start of s, and the low surrogate
// escape after it if it is a high one, returning the rune and the bytes used.
// r is -1 when four hexadecimal digits do not follow; paired is false, and r
// U+FFFD, for a surrogate without its other half.
func unescapeRune(s string) (r rune, n int, paired bool) {
	if r = hex4(s[2:]); r < 0 || !utf16.IsSurrogate(r) {
		return r, 6, true
	}
	r2 := rune(-1)
	if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
		r2 = hex4(s[8:])
	}
	if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
		return d, 12, true
	}
	return utf8.RuneError, 6, false
}

// hex4 decodes four hexadecimal digits, or returns -1.
func hex4(s string) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range []byte(s[:4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// gjsonComponent escapes a member name as a one-component gjson path, so that
// gjson matches it literally: "\", ".", "|", "*" and "?" anywhere (separators,
// wildcards, escapes), and "@", "!", "[", "{" at the start (modifiers,
// literals, multipaths). "#" and the query operators are special only inside
// arrays, where names are never looked up.
func gjsonComponent(name string) string {
	var b []byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		special := c == '\\' || c == '.' || c == '|' || c == '*' || c == '?' ||
			i == 0 && (c == '@' || c == '!' || c == '[' || c == '{')
		if special && b == nil {
			b = append(make([]byte, 0, len(name)+4), name[:i]...)
		}
		if special {
			b = append(b, '\\')
		}
		if b != nil {
			b = append(b, c)
		}
	}
	if b == nil {
		return name
	}
	return string(b)
}
