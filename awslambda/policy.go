package awslambda

import (
	"fmt"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// A policy decision, as IAM evaluates an authorizer's policy document for one
// action on one resource.
type decision int

const (
	implicitDeny decision = iota // no statement matches
	allowed
	explicitDeny
)

// evaluate returns the decision of doc for action on resource: an explicit
// Deny wins over any Allow, and without a matching Allow the request is
// denied. A statement whose Effect is neither "Allow" nor "Deny" makes the
// whole document invalid, as API Gateway treats it (500).
func evaluate(doc events.APIGatewayCustomAuthorizerPolicy, action, resource string) (decision, error) {
	d := implicitDeny
	for i, st := range doc.Statement {
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return implicitDeny, fmt.Errorf("awslambda: policy statement %d: Effect %q is neither Allow nor Deny", i, st.Effect)
		}
		if !matchAny(st.Action, action, true) || !matchAny(st.Resource, resource, false) {
			continue
		}
		if st.Effect == "Deny" {
			return explicitDeny, nil
		}
		d = allowed
	}
	return d, nil
}

func matchAny(patterns []string, s string, foldCase bool) bool {
	for _, p := range patterns {
		if foldCase {
			if wildcardMatch(strings.ToLower(p), strings.ToLower(s)) {
				return true
			}
		} else if wildcardMatch(p, s) {
			return true
		}
	}
	return false
}

// wildcardMatch reports whether s matches pattern, where '*' matches any run
// of characters (none included, '/' and ':' included) and '?' any one
// character, as in IAM's Action and Resource elements. It compares bytes:
// ARNs and actions are ASCII, and '?' matches one byte of anything else. It runs in
// O(len(pattern)·len(s)) at worst, with no recursion.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0 // the last '*' seen, and where its match ends so far
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			starP, starI = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case starP >= 0:
			// Let the last '*' take one more character, and retry after it.
			starI++
			p, i = starP+1, starI
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
