package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/samhub/samhub/pipeline/letter"
)

// consentRecord is a recorded consent as the API returns it.
type consentRecord struct {
	Consent  letter.Consent
	Recorded time.Time
	Revision uint64
}

func consentCmd(o *options) *cobra.Command {
	c := group("consent", "List, record and revoke a child's consent to share with other sectors (role coordinator)")
	var patient, reason string
	patientFlags := func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&patient, "patient", "", "the child's CPR or replacement id (sent in the request body, never in a URL)")
		cmd.Flags().StringVar(&reason, "reason", "", "why (required; audited)")
	}
	need := func() error {
		if strings.TrimSpace(patient) == "" {
			return fail(exitUsage, "--patient is required")
		}
		if strings.TrimSpace(reason) == "" {
			return fail(exitUsage, "--reason is required: every consent action is audited with why")
		}
		return nil
	}

	list := &cobra.Command{
		Use:   "list --patient ID --reason TEXT",
		Short: "Show the consents recorded for a child, oldest first (the last one is in force); the read is audited",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(); err != nil {
				return err
			}
			var v struct{ History []consentRecord }
			if printed, err := o.fetch(cmd, "POST", "/api/v1/consents/lookup", nil, map[string]any{"patient": patient, "reason": reason}, &v); err != nil || printed {
				return err
			}
			if len(v.History) == 0 {
				fmt.Fprintln(o.out, "No consent is recorded for this child: every sector but the municipality's own is denied.")
				return nil
			}
			tw := o.table()
			fmt.Fprintln(tw, "RECORDED\tGIVEN BY\tFORM\tGIVEN\tSCOPES\tYOUNG PERSON REFUSED\tWITHDRAWN")
			for _, r := range v.History {
				c := r.Consent
				scopes := make([]string, len(c.Scopes))
				for i, s := range c.Scopes {
					scopes[i] = string(s)
				}
				refused := "no"
				if c.YoungPersonRefused {
					refused = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ts(r.Recorded), dash(c.GivenBy), dash(c.Form), ts(c.GivenAt), dash(strings.Join(scopes, ",")), refused, ts(c.WithdrawnAt))
			}
			return tw.Flush()
		},
	}
	patientFlags(list)

	var scopes []string
	var givenBy, form, givenAt string
	var refused bool
	record := &cobra.Command{
		Use:   "record --patient ID --scope S[,S…] --given-by WHO --form oral|written --reason TEXT",
		Short: "Record the consent in force for a child (replaces the one before); audited",
		Long: "Record the consent in force for a child. It replaces the one recorded before; letters parked for\n" +
			"want of consent are then delivered when the coordinator replays them.\n\nScopes: " + scopeNames(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(); err != nil {
				return err
			}
			c := letter.Consent{GivenBy: givenBy, Form: form, YoungPersonRefused: refused}
			for _, s := range scopes {
				sc := letter.Scope(strings.TrimSpace(s))
				if !validScope(sc) {
					return fail(exitUsage, "--scope: %q is not one of %s", s, scopeNames())
				}
				c.Scopes = append(c.Scopes, sc)
			}
			if len(c.Scopes) == 0 && !refused {
				return fail(exitUsage, "--scope: name at least one sector the consent covers (%s)", scopeNames())
			}
			if form != "oral" && form != "written" {
				return fail(exitUsage, "--form: must be oral or written (Sundhedsloven § 42 allows both; it is recorded)")
			}
			if strings.TrimSpace(givenBy) == "" {
				return fail(exitUsage, "--given-by: who gave the consent, e.g. custody-holder or young-person")
			}
			if givenAt != "" {
				t, err := time.Parse("2006-01-02", givenAt)
				if err != nil {
					return fail(exitUsage, "--given-at: must be a date such as 2026-11-30")
				}
				c.GivenAt = t
			}
			var v struct{ Recorded bool }
			if printed, err := o.fetch(cmd, "POST", "/api/v1/consents", nil, map[string]any{"patient": patient, "consent": c, "reason": reason}, &v); err != nil || printed {
				return err
			}
			fmt.Fprintln(o.out, "Consent recorded. Letters parked for want of it go out when you replay them (samhubctl queue list --code consent_missing).")
			return nil
		},
	}
	patientFlags(record)
	record.Flags().StringSliceVar(&scopes, "scope", nil, "sectors the consent covers, comma-separated: "+scopeNames())
	record.Flags().StringVar(&givenBy, "given-by", "custody-holder", "who gave it: custody-holder, young-person, …")
	record.Flags().StringVar(&form, "form", "", "oral or written")
	record.Flags().StringVar(&givenAt, "given-at", "", "the date it was given (YYYY-MM-DD; default today)")
	record.Flags().BoolVar(&refused, "young-person-refused", false, "a young person of 15–17 refused sharing (overrides the custody holders for every other sector)")

	revoke := &cobra.Command{
		Use:   "revoke --patient ID --reason TEXT",
		Short: "Withdraw the child's consent from now on (nothing more goes to other sectors; what went is not recalled); audited",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(); err != nil {
				return err
			}
			var v struct{ Recorded bool }
			if printed, err := o.fetch(cmd, "POST", "/api/v1/consents/revoke", nil, map[string]any{"patient": patient, "reason": reason}, &v); err != nil || printed {
				return err
			}
			fmt.Fprintln(o.out, "Consent withdrawn from now on. Letters already delivered are not recalled.")
			return nil
		},
	}
	patientFlags(revoke)
	c.AddCommand(list, record, revoke)
	return c
}

func validScope(s letter.Scope) bool {
	for _, v := range letter.Scopes {
		if v == s {
			return true
		}
	}
	return false
}

func scopeNames() string {
	out := make([]string, len(letter.Scopes))
	for i, s := range letter.Scopes {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
}
