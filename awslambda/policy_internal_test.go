package awslambda

import (
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWildcardMatch(t *testing.T) {
	arn := "arn:aws:execute-api:us-east-1:123456789012:api1/prod/$connect"
	cases := []struct {
		pattern string
		s       string
		want    bool
	}{
		{arn, arn, true},
		{"*", arn, true},
		{"*", "", true},
		{"", "", true},
		{"", "a", false},
		{"?", "", false},
		{"?", "a", true},
		{"arn:aws:execute-api:*:*:api1/*/$connect", arn, true},
		{"arn:aws:execute-api:*:*:api1/*", arn, true},
		{"arn:aws:execute-api:*:*:api2/*", arn, false},
		{"arn:aws:execute-api:us-east-1:123456789012:api1/prod/$connec?", arn, true},
		{"arn:aws:execute-api:us-east-1:123456789012:api1/prod/$connect?", arn, false},
		{"arn:aws:execute-api:us-east-1:123456789012:api1/prod/$CONNECT", arn, false}, // resources are case-sensitive
		{"*$connect", arn, true},
		{"*/dev/*", arn, false},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYcZ", false},
		{"**?", "x", true},
		{"a*", "b", false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, wildcardMatch(tc.pattern, tc.s), "%q ~ %q", tc.pattern, tc.s)
	}
}

// FuzzWildcardMatch checks the matcher against a regular expression that
// means the same.
func FuzzWildcardMatch(f *testing.F) {
	f.Add("arn:*:x/?/$connect", "arn:aws:x/a/$connect")
	f.Add("a*b*c", "aXbYcZ")
	f.Add("*?*", "")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 64 {
			return
		}
		var re strings.Builder
		re.WriteString(`(?s)\A`)
		for i := 0; i < len(pattern); i++ {
			switch pattern[i] {
			case '*':
				re.WriteString(`(?:.|[\x00-\xff])*`)
			case '?':
				re.WriteString(`[\x00-\xff]`)
			default:
				re.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
			}
		}
		re.WriteString(`\z`)
		// Byte-wise semantics: compare on Latin-1 expansions so that regexp
		// sees one rune per byte.
		want := regexp.MustCompile(latin1(re.String())).MatchString(latin1(s))
		if got := wildcardMatch(pattern, s); got != want {
			t.Fatalf("wildcardMatch(%q, %q) = %v, want %v", pattern, s, got, want)
		}
	})
}

// latin1 maps each byte to the rune of the same value.
func latin1(s string) string {
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

func TestEvaluate(t *testing.T) {
	const res = "arn:aws:execute-api:us-east-1:1:api/prod/$connect"
	st := func(effect string, actions, resources []string) events.IAMPolicyStatement {
		return events.IAMPolicyStatement{Effect: effect, Action: actions, Resource: resources}
	}
	invoke := []string{"execute-api:Invoke"}
	cases := []struct {
		name string
		doc  []events.IAMPolicyStatement
		want decision
	}{
		{"empty policy denies", nil, implicitDeny},
		{"allow", []events.IAMPolicyStatement{st("Allow", invoke, []string{res})}, allowed},
		{"action wildcard", []events.IAMPolicyStatement{st("Allow", []string{"execute-api:*"}, []string{res})}, allowed},
		{"action case-insensitive", []events.IAMPolicyStatement{st("Allow", []string{"Execute-API:invoke"}, []string{res})}, allowed},
		{"other action", []events.IAMPolicyStatement{st("Allow", []string{"execute-api:ManageConnections"}, []string{res})}, implicitDeny},
		{"other resource", []events.IAMPolicyStatement{st("Allow", invoke, []string{"arn:aws:execute-api:us-east-1:1:api/dev/$connect"})}, implicitDeny},
		{"one of several resources", []events.IAMPolicyStatement{st("Allow", invoke, []string{"x", res})}, allowed},
		{"explicit deny", []events.IAMPolicyStatement{st("Deny", invoke, []string{res})}, explicitDeny},
		{"deny wins, before", []events.IAMPolicyStatement{st("Deny", invoke, []string{"*"}), st("Allow", invoke, []string{res})}, explicitDeny},
		{"deny wins, after", []events.IAMPolicyStatement{st("Allow", invoke, []string{res}), st("Deny", []string{"*"}, []string{"*/prod/*"})}, explicitDeny},
		{"deny elsewhere", []events.IAMPolicyStatement{st("Allow", invoke, []string{res}), st("Deny", invoke, []string{"*/dev/*"})}, allowed},
	}
	for _, tc := range cases {
		d, err := evaluate(events.APIGatewayCustomAuthorizerPolicy{Statement: tc.doc}, invokeAction, res)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, d, tc.name)
	}
	_, err := evaluate(events.APIGatewayCustomAuthorizerPolicy{Statement: []events.IAMPolicyStatement{st("allow", invoke, []string{res})}}, invokeAction, res)
	assert.ErrorContains(t, err, `Effect "allow"`)
}
