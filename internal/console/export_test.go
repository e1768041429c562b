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
