// Command composecheck loads Compose files the way `docker compose config`
// does (compose-go: the Compose Specification's JSON schema, interpolation,
// normalisation and the semantic checks) and prints the resolved project as
// JSON on stdout. It exits non-zero, with the loader's message on stderr, when
// the files are not a valid Compose project.
//
// No Docker engine is needed. Environment variables are taken from the
// process environment only (no .env file), so the output is reproducible.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck COMPOSE_FILE...")
		os.Exit(2)
	}
	files := os.Args[1:]
	workdir, err := filepath.Abs(filepath.Dir(files[0]))
	if err != nil {
		fail(err)
	}
	options, err := cli.NewProjectOptions(
		files,
		cli.WithWorkingDirectory(workdir),
		cli.WithOsEnv,
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	body, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(body)
	os.Stdout.Write([]byte("\n"))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "composecheck:", err)
	os.Exit(1)
}
