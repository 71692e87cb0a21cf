package wsroute

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Effect is the effect of a policy [Statement]: [EffectAllow] or [EffectDeny].
type Effect string

// The two effects of a statement.
const (
	EffectAllow Effect = "Allow"
	EffectDeny  Effect = "Deny"
)

// PolicyDecision is what [Policy.Evaluate] decides, as IAM decides it: a request is
// allowed only when a statement allows it and none denies it.
type PolicyDecision int

// The decisions of [Policy.Evaluate].
const (
	// PolicyImplicitDeny: no statement matches; the request is denied.
	PolicyImplicitDeny PolicyDecision = iota
	// PolicyAllowed: an Allow statement matches and no Deny statement does.
	PolicyAllowed
	// PolicyExplicitDeny: a Deny statement matches. It wins over every Allow.
	PolicyExplicitDeny
)

// String returns "allowed", "implicit deny" or "explicit deny".
func (d PolicyDecision) String() string {
	switch d {
	case PolicyAllowed:
		return "allowed"
	case PolicyExplicitDeny:
		return "explicit deny"
	default:
		return "implicit deny"
	}
}

// Policy is an IAM-style policy document: the subset of IAM's grammar that
// API Gateway's execute-api permissions and Lambda authorizers' policy
// documents use. Its JSON form is IAM's:
//
//	{"Version": "2012-10-17", "Statement": [
//	  {"Effect": "Allow", "Action": "execute-api:Invoke",
//	   "Resource": "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/*"},
//	  {"Effect": "Deny", "Action": ["execute-api:Invoke"],
//	   "Resource": ["arn:aws:execute-api:*:*:abcdef1234/prod/$connect"]}]}
//
// Action and Resource may each be a string or an array of strings, and
// Statement an object or an array. A Policy is read-only once in use, and then
// safe for concurrent use.
type Policy struct {
	Version   string      `json:"Version,omitempty"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a [Policy]. An action or resource pattern may
// contain the wildcards * (any run of characters) and ? (one character): see
// [MatchAction] and [MatchARN].
type Statement struct {
	Sid      string   `json:"Sid,omitempty"`
	Effect   Effect   `json:"Effect"`
	Action   []string `json:"Action"`
	Resource []string `json:"Resource"`
}

// ParsePolicy parses an IAM-style JSON policy document. It refuses what it
// cannot evaluate rather than ignore it: Condition, NotAction, NotResource,
// Principal and NotPrincipal, an unknown Effect, and a statement without an
// action or a resource.
func ParsePolicy(doc []byte) (*Policy, error) {
	var raw struct {
		Version   string          `json:"Version"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("wsroute: policy: %w", err)
	}
	var stmts []json.RawMessage
	switch s := bytes.TrimSpace(raw.Statement); {
	case len(s) == 0 || bytes.Equal(s, []byte("null")):
		return nil, errors.New("wsroute: policy: no Statement")
	case s[0] == '[':
		if err := json.Unmarshal(s, &stmts); err != nil {
			return nil, fmt.Errorf("wsroute: policy: Statement: %w", err)
		}
	default:
		stmts = []json.RawMessage{s}
	}
	p := &Policy{Version: raw.Version, Statement: make([]Statement, 0, len(stmts))}
	for i, s := range stmts {
		st, err := parseStatement(s)
		if err != nil {
			return nil, fmt.Errorf("wsroute: policy: statement %d: %w", i, err)
		}
		p.Statement = append(p.Statement, st)
	}
	return p, nil
}

func parseStatement(b []byte) (Statement, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return Statement{}, err
	}
	var st Statement
	for k, v := range m {
		var err error
		switch k {
		case "Sid":
			err = json.Unmarshal(v, &st.Sid)
		case "Effect":
			err = json.Unmarshal(v, &st.Effect)
		case "Action":
			st.Action, err = stringOrList(v)
		case "Resource":
			st.Resource, err = stringOrList(v)
		default:
			return Statement{}, fmt.Errorf("%s is not supported", k)
		}
		if err != nil {
			return Statement{}, fmt.Errorf("%s: %w", k, err)
		}
	}
	return st, st.validate()
}

func stringOrList(v json.RawMessage) ([]string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return []string{s}, nil
	}
	var l []string
	if err := json.Unmarshal(v, &l); err != nil {
		return nil, errors.New("want a string or an array of strings")
	}
	return l, nil
}

func (st *Statement) validate() error {
	if st.Effect != EffectAllow && st.Effect != EffectDeny {
		return fmt.Errorf("effect %q: want Allow or Deny", st.Effect)
	}
	if len(st.Action) == 0 || len(st.Resource) == 0 {
		return errors.New("a statement needs an action and a resource")
	}
	for _, a := range st.Action {
		if a == "" {
			return errors.New("empty action")
		}
	}
	for _, r := range st.Resource {
		if r != "*" && strings.Count(r, ":") < 5 {
			return fmt.Errorf("resource %q is neither * nor an ARN (arn:partition:service:region:account:resource)", r)
		}
	}
	return nil
}

// Evaluate decides whether the policy allows action on resource: an explicit
// Deny wins over any Allow, and without a matching Allow the request is
// implicitly denied. A nil Policy denies implicitly.
func (p *Policy) Evaluate(action, resource string) PolicyDecision {
	if p == nil {
		return PolicyImplicitDeny
	}
	d := PolicyImplicitDeny
	for i := range p.Statement {
		st := &p.Statement[i]
		if !matchesAny(st.Action, action, MatchAction) || !matchesAny(st.Resource, resource, MatchARN) {
			continue
		}
		if st.Effect == EffectDeny {
			return PolicyExplicitDeny
		}
		if st.Effect == EffectAllow {
			d = PolicyAllowed
		}
	}
	return d
}

func matchesAny(patterns []string, s string, match func(string, string) bool) bool {
	for _, p := range patterns {
		if match(p, s) {
			return true
		}
	}
	return false
}

// MatchAction reports whether an IAM action pattern such as
// "execute-api:*" matches action, case-insensitively as IAM does.
func MatchAction(pattern, action string) bool {
	return wildcardMatch(strings.ToLower(pattern), strings.ToLower(action))
}

// MatchARN reports whether an IAM resource pattern matches arn, as IAM
// matches them: "*" alone matches everything; otherwise both are split into
// their six colon-separated parts (arn:partition:service:region:account:
// resource) and each part of the pattern must match the same part of arn,
// where * matches any run of characters within the part and ? one
// character. In the last part, the resource, which may itself contain "/"
// and ":", * matches across them: "abc123/prod/*" matches
// "abc123/prod/$connect". Matching is case-sensitive.
func MatchARN(pattern, arn string) bool {
	if pattern == "*" {
		return true
	}
	ps := strings.SplitN(pattern, ":", 6)
	as := strings.SplitN(arn, ":", 6)
	if len(ps) != 6 || len(as) != 6 {
		return false
	}
	for i := range ps {
		if !wildcardMatch(ps[i], as[i]) {
			return false
		}
	}
	return true
}

// wildcardMatch matches s against a pattern where * matches any run of bytes
// and ? one character. It runs in O(len(pattern)·len(s)) at worst, without
// recursion.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			if pattern[p] == '?' {
				i += runeLen(s[i:]) // ? is one character, not one byte
			} else {
				i++
			}
			p++
		case star >= 0:
			p = star + 1
			mark += runeLen(s[mark:])
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func runeLen(s string) int {
	for n := 1; n < len(s); n++ {
		if s[n]&0xC0 != 0x80 {
			return n
		}
	}
	return len(s)
}
