package main

import (
	"github.com/spf13/cobra"
)

func validateCmd() *cobra.Command {
	return &cobra.Command{Use: "validate", Hidden: true}
}

func routeCmd() *cobra.Command {
	return &cobra.Command{Use: "route", Hidden: true}
}
