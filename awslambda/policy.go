package awslambda

import (
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/wsroute/wsroute"
)

// evaluate returns the decision of an authorizer's policy document for action
// on resource, with the core's IAM-style matcher ([wsroute.Policy.Evaluate]):
// an explicit Deny wins over any Allow, and without a matching Allow the
// request is denied. A statement whose Effect is neither "Allow" nor "Deny"
// makes the whole document invalid, as API Gateway treats it (500).
func evaluate(doc events.APIGatewayCustomAuthorizerPolicy, action, resource string) (wsroute.PolicyDecision, error) {
	p := wsroute.Policy{Version: doc.Version, Statement: make([]wsroute.Statement, 0, len(doc.Statement))}
	for i, st := range doc.Statement {
		if st.Effect != string(wsroute.EffectAllow) && st.Effect != string(wsroute.EffectDeny) {
			return wsroute.PolicyImplicitDeny, fmt.Errorf("awslambda: policy statement %d: Effect %q is neither Allow nor Deny", i, st.Effect)
		}
		p.Statement = append(p.Statement, wsroute.Statement{Effect: wsroute.Effect(st.Effect), Action: st.Action, Resource: st.Resource})
	}
	return p.Evaluate(action, resource), nil
}
