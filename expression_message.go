package wsroute

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// RouteSelectionExpression returns the router's compiled route selection
// expression, for clients and tests that build messages for it (see
// [Expression.Message]).
func (r *Router) RouteSelectionExpression() *Expression { return r.expr }

// maxMessageSearch bounds the ways [Expression.Message] tries to split a
// route key among the expression's variables.
const maxMessageSearch = 10000

// Message returns a JSON object that the expression routes to routeKey: the
// fields, with the values the expression reads set so that it yields
// routeKey. With the default expression, Message("join", {"room": "r1"})
// gives {"action":"join","room":"r1"}; with
// ${request.body.service}/${request.body.action}, Message("chat/join", nil)
// gives {"action":"join","service":"chat"}. Nested paths and indices are
// built as needed. A value in fields at a path the expression reads is
// replaced.
//
// It fails when no message yields routeKey: a static expression that yields
// another key, literal text the key does not contain, or values that
// cannot coexist (two variables reading one path, an expression reading the
// whole body together with fields). fields must encode to a JSON object.
func (e *Expression) Message(routeKey string, fields map[string]any) ([]byte, error) {
	base := map[string]any{}
	if len(fields) > 0 {
		b, err := json.Marshal(fields)
		if err != nil {
			return nil, fmt.Errorf("wsroute: encoding the message fields: %w", err)
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber() // numbers keep their text: no int64 rounded to a float64
		if err := d.Decode(&base); err != nil {
			return nil, fmt.Errorf("wsroute: the message fields must encode to a JSON object: %w", err)
		}
	}
	tries := 0
	var found []byte
	var try func(part int, rest string, vals []string) bool
	try = func(part int, rest string, vals []string) bool {
		if tries++; tries > maxMessageSearch {
			return true // give up
		}
		if part == len(e.parts) {
			if rest != "" {
				return false
			}
			if b, ok := e.build(base, vals, routeKey, len(fields) > 0); ok {
				found = b
				return true
			}
			return false
		}
		p := e.parts[part]
		if !p.isVar {
			if len(rest) < len(p.lit) || rest[:len(p.lit)] != p.lit {
				return false
			}
			return try(part+1, rest[len(p.lit):], vals)
		}
		if part == len(e.parts)-1 {
			return try(part+1, "", append(vals, rest))
		}
		for j := 0; j <= len(rest); j++ {
			if try(part+1, rest[j:], append(vals, rest[:j])) {
				return true
			}
		}
		return false
	}
	try(0, routeKey, nil)
	if found == nil {
		return nil, fmt.Errorf("wsroute: no message makes the route selection expression %q yield the route key %q", e.src, routeKey)
	}
	return found, nil
}

// build makes the message that sets each variable of e to its value in vals,
// and reports whether e yields want on it.
func (e *Expression) build(base map[string]any, vals []string, want string, hasFields bool) ([]byte, bool) {
	var root any = deepCopyJSON(base)
	i := 0
	for _, p := range e.parts {
		if !p.isVar {
			continue
		}
		if len(p.steps) == 0 { // the whole body
			if hasFields {
				return nil, false
			}
			root = vals[i]
		} else {
			root = setPath(root, p.steps, vals[i])
		}
		i++
	}
	b, err := json.Marshal(root)
	if err != nil {
		return nil, false
	}
	got, ok := e.EvaluateString(string(b))
	return b, ok && got == want
}

// setPath returns node with the value at steps set to v, creating objects and
// arrays (padded with null) on the way.
func setPath(node any, steps []pathStep, v string) any {
	if len(steps) == 0 {
		return v
	}
	s := steps[0]
	if s.isIndex {
		k, err := strconv.Atoi(s.name)
		if err != nil || k > 1<<16 {
			return node
		}
		arr, _ := node.([]any)
		for len(arr) <= k {
			arr = append(arr, nil)
		}
		arr[k] = setPath(arr[k], steps[1:], v)
		return arr
	}
	m, ok := node.(map[string]any)
	if !ok {
		m = map[string]any{}
	}
	m[s.name] = setPath(m[s.name], steps[1:], v)
	return m
}

// deepCopyJSON copies a value decoded from JSON.
func deepCopyJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = deepCopyJSON(x)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, x := range v {
			a[i] = deepCopyJSON(x)
		}
		return a
	}
	return v
}
