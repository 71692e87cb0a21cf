package wsroute_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

const connectARN = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/$connect"

func TestMatchARN(t *testing.T) {
	tests := []struct {
		name, pattern, arn string
		want               bool
	}{
		{"exact", connectARN, connectARN, true},
		{"star alone", "*", connectARN, true},
		{"partition wildcard", "arn:aws*:execute-api:eu-west-1:123456789012:abcdef1234/prod/$connect", connectARN, true},
		{"service wildcard", "arn:aws:execute-*:eu-west-1:123456789012:abcdef1234/prod/$connect", connectARN, true},
		{"region star", "arn:aws:execute-api:*:123456789012:abcdef1234/prod/$connect", connectARN, true},
		{"region prefix", "arn:aws:execute-api:eu-*:123456789012:abcdef1234/prod/$connect", connectARN, true},
		{"region prefix other", "arn:aws:execute-api:us-*:123456789012:abcdef1234/prod/$connect", connectARN, false},
		{"region question marks", "arn:aws:execute-api:eu-west-?:123456789012:abcdef1234/prod/$connect", connectARN, true},
		{"account star", "arn:aws:execute-api:eu-west-1:*:abcdef1234/prod/$connect", connectARN, true},
		{"account other", "arn:aws:execute-api:eu-west-1:999999999999:abcdef1234/prod/$connect", connectARN, false},
		{"account question marks", "arn:aws:execute-api:eu-west-1:1234567890??:abcdef1234/prod/$connect", connectARN, true},
		{"account too few question marks", "arn:aws:execute-api:eu-west-1:1234567890?:abcdef1234/prod/$connect", connectARN, false},
		{"api star", "arn:aws:execute-api:eu-west-1:123456789012:*/prod/$connect", connectARN, true},
		{"stage star", "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/*/$connect", connectARN, true},
		{"route star", "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/*", connectARN, true},
		{"resource star crosses slashes", "arn:aws:execute-api:eu-west-1:123456789012:*", connectARN, true},
		{"resource star prefix", "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/*", connectARN, true},
		{"other stage", "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/dev/*", connectARN, false},
		{"other route", "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/sendmessage", connectARN, false},
		{"route question mark", "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/$connec?", connectARN, true},
		{"case sensitive", "arn:aws:execute-api:eu-west-1:123456789012:ABCDEF1234/prod/$connect", connectARN, false},
		{"star does not cross a colon segment", "arn:aws:execute-api:*:abcdef1234/prod/$connect", connectARN, false},
		{"region star does not swallow the account", "arn:aws:execute-api:*:abcdef1234/prod/$connect:x", connectARN, false},
		{"all segments starred", "arn:*:*:*:*:*", connectARN, true},
		{"too few segments", "arn:aws:execute-api", connectARN, false},
		{"prefix only", "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod", connectARN, false},
		{"longer than the arn", connectARN + "x", connectARN, false},
		{"several stars", "arn:aws:execute-api:eu-west-1:123456789012:a*1*/*/$*", connectARN, true},
		{"empty pattern", "", connectARN, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, wsroute.MatchARN(tt.pattern, tt.arn), "%s vs %s", tt.pattern, tt.arn)
		})
	}
}

func TestMatchAction(t *testing.T) {
	tests := []struct {
		pattern string
		want    bool
	}{
		{"execute-api:Invoke", true},
		{"execute-api:invoke", true},
		{"EXECUTE-API:INVOKE", true},
		{"execute-api:*", true},
		{"*", true},
		{"execute-api:Inv?ke", true},
		{"execute-api:ManageConnections", false},
		{"s3:*", false},
		{"execute-api:Invoke*", true},
		{"execute-api:InvokeX", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, wsroute.MatchAction(tt.pattern, "execute-api:Invoke"), tt.pattern)
	}
}

func TestPolicyEvaluate(t *testing.T) {
	allow := func(res ...string) wsroute.Statement {
		return wsroute.Statement{Effect: wsroute.EffectAllow, Action: []string{"execute-api:Invoke"}, Resource: res}
	}
	deny := func(res ...string) wsroute.Statement {
		return wsroute.Statement{Effect: wsroute.EffectDeny, Action: []string{"execute-api:Invoke"}, Resource: res}
	}
	tests := []struct {
		name  string
		stmts []wsroute.Statement
		want  wsroute.PolicyDecision
	}{
		{"no statements", nil, wsroute.PolicyImplicitDeny},
		{"allow", []wsroute.Statement{allow(connectARN)}, wsroute.PolicyAllowed},
		{"allow elsewhere", []wsroute.Statement{allow("arn:aws:execute-api:*:*:other/*")}, wsroute.PolicyImplicitDeny},
		{"deny", []wsroute.Statement{deny(connectARN)}, wsroute.PolicyExplicitDeny},
		{"explicit deny over allow", []wsroute.Statement{allow("*"), deny(connectARN)}, wsroute.PolicyExplicitDeny},
		{"deny first, allow after", []wsroute.Statement{deny("arn:aws:execute-api:*:*:*/prod/*"), allow(connectARN)}, wsroute.PolicyExplicitDeny},
		{"deny elsewhere, allow here", []wsroute.Statement{deny("arn:aws:execute-api:*:*:*/prod/secret"), allow("arn:aws:execute-api:*:*:*/prod/*")}, wsroute.PolicyAllowed},
		{"allow another action", []wsroute.Statement{{Effect: wsroute.EffectAllow, Action: []string{"execute-api:ManageConnections"}, Resource: []string{"*"}}}, wsroute.PolicyImplicitDeny},
		{"deny another action", []wsroute.Statement{allow("*"), {Effect: wsroute.EffectDeny, Action: []string{"execute-api:ManageConnections"}, Resource: []string{"*"}}}, wsroute.PolicyAllowed},
		{"action wildcard deny", []wsroute.Statement{allow("*"), {Effect: wsroute.EffectDeny, Action: []string{"execute-api:*"}, Resource: []string{connectARN}}}, wsroute.PolicyExplicitDeny},
		{"one of several resources", []wsroute.Statement{allow("arn:aws:execute-api:*:*:x/*", connectARN)}, wsroute.PolicyAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &wsroute.Policy{Statement: tt.stmts}
			assert.Equal(t, tt.want, p.Evaluate("execute-api:Invoke", connectARN))
		})
	}
	var nilPolicy *wsroute.Policy
	assert.Equal(t, wsroute.PolicyImplicitDeny, nilPolicy.Evaluate("execute-api:Invoke", connectARN))
}

func TestParsePolicy(t *testing.T) {
	// The example of AWS's "Control access to WebSocket APIs with IAM
	// authorization", with strings and arrays mixed.
	p, err := wsroute.ParsePolicy([]byte(`{"Version": "2012-10-17", "Statement": [
		{"Effect": "Allow", "Action": ["execute-api:Invoke"], "Resource": ["arn:aws:execute-api:us-east-1:111122223333:api-id/prod/*"]},
		{"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:us-east-1:111122223333:api-id/prod/secret"},
		{"Sid": "x", "Effect": "Deny", "Action": ["execute-api:ManageConnections"], "Resource": ["arn:aws:execute-api:us-east-1:111122223333:api-id/*"]}]}`))
	require.NoError(t, err)
	require.Len(t, p.Statement, 3)
	arn := func(route string) string { return "arn:aws:execute-api:us-east-1:111122223333:api-id/prod/" + route }
	assert.Equal(t, wsroute.PolicyAllowed, p.Evaluate("execute-api:Invoke", arn("$connect")))
	assert.Equal(t, wsroute.PolicyExplicitDeny, p.Evaluate("execute-api:Invoke", arn("secret")))
	assert.Equal(t, wsroute.PolicyImplicitDeny, p.Evaluate("execute-api:Invoke", "arn:aws:execute-api:us-east-1:111122223333:api-id/dev/$connect"))

	one, err := wsroute.ParsePolicy([]byte(`{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}`))
	require.NoError(t, err)
	assert.Equal(t, wsroute.PolicyAllowed, one.Evaluate("execute-api:Invoke", connectARN))

	for _, bad := range []string{
		`not json`,
		`{}`,
		`{"Statement": null}`,
		`{"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}`,
		`{"Statement": [{"Effect": "Allow", "Resource": "*"}]}`,
		`{"Statement": [{"Effect": "Allow", "Action": "*"}]}`,
		`{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "not-an-arn"}]}`,
		`{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {}}]}`,
		`{"Statement": [{"Effect": "Allow", "NotAction": "*", "Resource": "*"}]}`,
		`{"Statement": [{"Effect": "Allow", "Action": "*", "NotResource": "*"}]}`,
		`{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}]}`,
		`{"Statement": [{"Effect": "Allow", "Action": 3, "Resource": "*"}]}`,
		`{"Statement": [{"Effect": "Allow", "Action": [""], "Resource": "*"}]}`,
	} {
		_, err := wsroute.ParsePolicy([]byte(bad))
		assert.Error(t, err, bad)
	}
}
