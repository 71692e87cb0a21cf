package wsroute

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// exprParser parses one expression; see EXPRESSIONS.md for the grammar.
type exprParser struct {
	src   string
	pos   int
	lit   []byte // literal text not yet added to parts
	parts []exprPart
}

func (p *exprParser) fail(offset int, msg string) error {
	return &ExpressionError{Expr: p.src, Offset: offset, Msg: msg}
}

func (p *exprParser) parse() error {
	if p.src == "" {
		return p.fail(0, "empty expression")
	}
	for i := 0; i < len(p.src); {
		r, n := utf8.DecodeRuneInString(p.src[i:])
		if r == utf8.RuneError && n == 1 {
			return p.fail(i, "invalid UTF-8")
		}
		i += n
	}
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; c {
		case '\\':
			if p.pos+1 == len(p.src) || (p.src[p.pos+1] != '$' && p.src[p.pos+1] != '\\') {
				return p.fail(p.pos, `"\" must be followed by "$" or "\"`)
			}
			p.lit = append(p.lit, p.src[p.pos+1])
			p.pos += 2
		case '$':
			if err := p.variable(); err != nil {
				return err
			}
		default:
			p.lit = append(p.lit, c)
			p.pos++
		}
	}
	p.flushLiteral()
	return nil
}

func (p *exprParser) flushLiteral() {
	if len(p.lit) > 0 {
		p.parts = append(p.parts, exprPart{lit: string(p.lit)})
		p.lit = p.lit[:0]
	}
}

const bodySource = "request.body"

// variable parses "$" source path or "${" source path "}" at p.pos.
func (p *exprParser) variable() error {
	p.flushLiteral()
	start := p.pos
	p.pos++
	wrapped := p.pos < len(p.src) && p.src[p.pos] == '{'
	if wrapped {
		p.pos++
	}
	if !strings.HasPrefix(p.src[p.pos:], bodySource) ||
		(p.pos+len(bodySource) < len(p.src) && isNameChar(p.src[p.pos+len(bodySource)])) {
		// Name the variable in the message: the dotted names that follow.
		end := p.pos
		for end < len(p.src) && (isNameChar(p.src[end]) || p.src[end] == '.') {
			end++
		}
		name := strings.TrimRight(p.src[p.pos:end], ".")
		switch {
		case name != "":
			return p.fail(p.pos, fmt.Sprintf("unsupported variable %q: only $request.body may be read", "$"+name))
		case wrapped && p.pos == len(p.src):
			return p.fail(start, `unterminated "${"`)
		}
		return p.fail(p.pos, `expected a variable name after "$" (write \$ for a literal "$")`)
	}
	p.pos += len(bodySource)
	var steps []pathStep
	for p.pos < len(p.src) && (p.src[p.pos] == '.' || p.src[p.pos] == '[') {
		st, err := p.step()
		if err != nil {
			return err
		}
		steps = append(steps, st)
	}
	if wrapped {
		if p.pos == len(p.src) {
			return p.fail(start, `unterminated "${"`)
		}
		if p.src[p.pos] != '}' {
			return p.fail(p.pos, `expected ".", "[" or "}"`)
		}
		p.pos++
	}
	p.parts = append(p.parts, exprPart{isVar: true, steps: steps})
	return nil
}

// step parses "." name, "[" index "]" or "[" quoted-name "]" at p.pos.
func (p *exprParser) step() (pathStep, error) {
	if p.src[p.pos] == '.' {
		p.pos++
		start := p.pos
		for p.pos < len(p.src) && isNameChar(p.src[p.pos]) {
			p.pos++
		}
		if p.pos == start {
			return pathStep{}, p.fail(start, "expected a name")
		}
		name := p.src[start:p.pos]
		return pathStep{name: name, gpath: gjsonComponent(name)}, nil
	}
	p.pos++ // '['
	var st pathStep
	c := byte(0)
	if p.pos < len(p.src) {
		c = p.src[p.pos]
	}
	switch {
	case isDigit(c):
		start := p.pos
		for p.pos < len(p.src) && isDigit(p.src[p.pos]) {
			p.pos++
		}
		if c == '0' && p.pos-start > 1 {
			return st, p.fail(start, "index with a leading zero")
		}
		st = pathStep{isIndex: true, name: p.src[start:p.pos], gpath: p.src[start:p.pos]}
	case c == '\'' || c == '"':
		name, err := p.quoted()
		if err != nil {
			return st, err
		}
		st = pathStep{name: name, gpath: gjsonComponent(name)}
	default:
		return st, p.fail(p.pos, "expected an index or a quoted name")
	}
	if p.pos == len(p.src) || p.src[p.pos] != ']' {
		return st, p.fail(p.pos, `expected "]"`)
	}
	p.pos++
	return st, nil
}

// quoted parses a name in single or double quotes at p.pos and returns it
// unescaped. Escapes are JSON's, plus \' for a single quote.
func (p *exprParser) quoted() (string, error) {
	q := p.src[p.pos]
	start := p.pos
	p.pos++
	var b []byte
	for {
		if p.pos >= len(p.src) {
			return "", p.fail(start, "unterminated quoted name")
		}
		c := p.src[p.pos]
		if c == q {
			p.pos++
			return string(b), nil
		}
		if c != '\\' {
			b = append(b, c)
			p.pos++
			continue
		}
		if p.pos+1 == len(p.src) {
			return "", p.fail(start, "unterminated quoted name")
		}
		esc := p.pos
		switch c = p.src[p.pos+1]; {
		case c == '\'':
			b = append(b, c)
			p.pos += 2
		case c == 'u':
			r, n, paired := unescapeRune(p.src[p.pos:])
			if r < 0 {
				return "", p.fail(esc, `"\u" must be followed by four hexadecimal digits`)
			}
			if !paired {
				return "", p.fail(esc, "unpaired surrogate in \\u escape")
			}
			b = utf8.AppendRune(b, r)
			p.pos += n
		default:
			u, ok := unescapeByte(c)
			if !ok {
				return "", p.fail(esc, fmt.Sprintf("invalid escape %q in quoted name", p.src[esc:esc+2]))
			}
			b = append(b, u)
			p.pos += 2
		}
	}
}

// isNameChar reports whether c may appear in a dotted name: an ASCII letter or
// digit, "_", "-", or any byte of a non-ASCII character.
func isNameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) ||
		c == '_' || c == '-' || c >= utf8.RuneSelf
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
