package awslambda

import (
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wsroute/wsroute"
)

func TestEvaluate(t *testing.T) {
	const res = "arn:aws:execute-api:us-east-1:1:api/prod/$connect"
	st := func(effect string, actions, resources []string) events.IAMPolicyStatement {
		return events.IAMPolicyStatement{Effect: effect, Action: actions, Resource: resources}
	}
	invoke := []string{"execute-api:Invoke"}
	cases := []struct {
		name string
		doc  []events.IAMPolicyStatement
		want wsroute.PolicyDecision
	}{
		{"empty policy denies", nil, wsroute.PolicyImplicitDeny},
		{"allow", []events.IAMPolicyStatement{st("Allow", invoke, []string{res})}, wsroute.PolicyAllowed},
		{"action wildcard", []events.IAMPolicyStatement{st("Allow", []string{"execute-api:*"}, []string{res})}, wsroute.PolicyAllowed},
		{"action case-insensitive", []events.IAMPolicyStatement{st("Allow", []string{"Execute-API:invoke"}, []string{res})}, wsroute.PolicyAllowed},
		{"other action", []events.IAMPolicyStatement{st("Allow", []string{"execute-api:ManageConnections"}, []string{res})}, wsroute.PolicyImplicitDeny},
		{"other resource", []events.IAMPolicyStatement{st("Allow", invoke, []string{"arn:aws:execute-api:us-east-1:1:api/dev/$connect"})}, wsroute.PolicyImplicitDeny},
		{"one of several resources", []events.IAMPolicyStatement{st("Allow", invoke, []string{"x", res})}, wsroute.PolicyAllowed},
		{"explicit deny", []events.IAMPolicyStatement{st("Deny", invoke, []string{res})}, wsroute.PolicyExplicitDeny},
		{"deny wins, before", []events.IAMPolicyStatement{st("Deny", invoke, []string{"*"}), st("Allow", invoke, []string{res})}, wsroute.PolicyExplicitDeny},
		{"deny wins, after", []events.IAMPolicyStatement{st("Allow", invoke, []string{res}), st("Deny", []string{"*"}, []string{"arn:aws:execute-api:*:*:*/prod/*"})}, wsroute.PolicyExplicitDeny},
		{"deny elsewhere", []events.IAMPolicyStatement{st("Allow", invoke, []string{res}), st("Deny", invoke, []string{"arn:aws:execute-api:*:*:*/dev/*"})}, wsroute.PolicyAllowed},
	}
	for _, tc := range cases {
		d, err := evaluate(events.APIGatewayCustomAuthorizerPolicy{Statement: tc.doc}, invokeAction, res)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, d, tc.name)
	}
	_, err := evaluate(events.APIGatewayCustomAuthorizerPolicy{Statement: []events.IAMPolicyStatement{st("allow", invoke, []string{res})}}, invokeAction, res)
	assert.ErrorContains(t, err, `Effect "allow"`)
}
