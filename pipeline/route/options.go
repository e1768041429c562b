package route

// The router takes its rules in these plain types; internal/config turns
// the routes, destinations and receivers of the configuration file into
// them (config.RouteOptions), so routing knows no configuration loader.

// Options is everything a Router decides with.
type Options struct {
	// Rules in order: the first that matches a letter and names a
	// destination decides for that destination.
	Rules        []Rule
	Destinations map[string]Destination // by name
	Receivers    []Receiver             // the receiver directory
}

// Rule sends letters that match to destinations.
type Rule struct {
	Name      string
	Match     Match
	To        []string // destination names
	Anonymise bool
	// RequireConsent nil: consent is needed outside the municipality's own
	// sector and internal notices (deny by default); false skips the check,
	// true asks for it anyway.
	RequireConsent *bool
}

// Match selects letters; empty lists match anything.
type Match struct {
	Kind     []string
	Source   []string
	Category []string
	Sender   []string // GLN, SOR, email or role:<role>
	Receiver []string // GLN, SOR, email or role:<role>
	Format   []string
}

// Destination is what routing needs of a destination.
type Destination struct {
	// Sector is municipality, internal, gp, parents, region_psychiatry or
	// school_ppr: it says whose consent is needed and which parties are
	// addressed.
	Sector string
	// Receiver (a GLN or SOR of the receiver directory) is who the
	// destination delivers to when the letter does not say.
	Receiver string
}

// Receiver is one entry of the receiver directory.
type Receiver struct {
	Name string
	Role string // gp, region, hospital, municipality, school
	GLN  string
	SOR  string
	// Formats the receiver takes, most preferred first (fhir-xml,
	// fhir-json, xdis91).
	Formats []string
}
