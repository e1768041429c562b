package console

// Catalogue gives the external tests every text of the console in both
// languages: the messages and the explanations of reason codes.
func Catalogue() [][2]string {
	var out [][2]string
	for _, m := range messages {
		out = append(out, m)
	}
	for _, e := range explanations {
		out = append(out, e.what, e.do)
	}
	return out
}

// Patterns are the console's routes as its mux serves them.
func Patterns() []string {
	c := &Console{}
	c.routes()
	return c.patterns
}

// DanishAction is how the auditor's page names an audit action in
// Danish, or "" when it has no words for it.
func DanishAction(action string) string { return trOr("da", "a.action."+action, "") }

// DanishResult is how the auditor's page words an audit result in Danish.
func DanishResult(result string) string { return auditResult("da", result) }
