package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/circles-coop/circles/server"
)

// settingFlag is a flag for one server setting: its value is checked when
// the flag is parsed and applied after the file and the environment.
type settingFlag struct {
	st    server.Setting
	value *string
}

func (f settingFlag) String() string {
	if f.value == nil {
		return ""
	}
	return *f.value
}

func (f settingFlag) Set(v string) error {
	if err := f.st.Parse(v); err != nil {
		return err
	}
	*f.value = v
	return nil
}

func (f settingFlag) IsBoolFlag() bool { return f.st.Bool }

// serveSettings reads serve's settings: the defaults, overridden by the
// config file (--config, else CIRCLED_CONFIG), overridden by the
// environment, overridden by the flags given.
func serveSettings(args []string, getenv func(string) string, stderr io.Writer) (server.Settings, error) {
	s := server.DefaultSettings()
	fs := newFlags("serve", stderr)
	configPath := fs.String("config", getenv("CIRCLED_CONFIG"), "a YAML config file (flags > environment > file > defaults)")
	given := map[string]*string{}
	for _, st := range server.SettingsTable() {
		v := new(string)
		given[st.Flag] = v
		fs.Var(settingFlag{st: st, value: v}, st.Flag, fmt.Sprintf("%s (env %s, file key %s)", st.Usage, st.Env, st.Key))
	}
	verbose := fs.Bool("v", false, "log debug messages (--log-level debug)")
	if err := fs.Parse(args); err != nil {
		return s, usageError{err}
	}
	if fs.NArg() > 0 {
		return s, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *configPath != "" {
		if err := s.LoadFile(*configPath); err != nil {
			return s, err
		}
	}
	if err := s.LoadEnv(getenv); err != nil {
		return s, err
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		for _, st := range server.SettingsTable() {
			if st.Flag == f.Name && err == nil {
				// Checked when parsed; Set cannot fail here.
				err = s.Set(st.Key, *given[st.Flag])
			}
		}
	})
	if err != nil {
		return s, err
	}
	if *verbose {
		s.LogLevel = slog.LevelDebug
	}
	if err := s.Check(); err != nil {
		return s, usageError{err}
	}
	return s, nil
}

// runConfig is `circled config check FILE`.
func runConfig(args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "check" {
		return usageError{errors.New("usage: circled config check FILE")}
	}
	keys, err := server.CheckConfigFile(args[1])
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		fmt.Fprintf(stdout, "%s: ok (sets nothing)\n", args[1])
		return nil
	}
	fmt.Fprintf(stdout, "%s: ok (sets %s)\n", args[1], strings.Join(keys, ", "))
	return nil
}
