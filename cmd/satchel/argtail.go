package main

import (
	"fmt"
	"strings"
)

// tailFlags reads the flags that follow a command's arguments, as in
// "satchel restore old --to new": urfave/cli v2 stops reading flags at
// the first argument and would take "--to" for an account name. It
// knows the command's own flags, bound to the same variables as the
// ones urfave/cli reads before the arguments.
type tailFlags struct {
	strs  map[string]*string
	lists map[string]*[]string
	bools map[string]*bool
}

// parse returns the arguments that are not flags, in order, and sets the
// flags found among them. "--" ends the flags; an unknown flag is a
// usage error.
func (tf tailFlags) parse(args []string) ([]string, error) {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i+1:]...), nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			out = append(out, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if p, ok := tf.bools[name]; ok {
			switch {
			case !hasValue || value == "true":
				*p = true
			case value == "false":
				*p = false
			default:
				return nil, usageError{fmt.Errorf("flag %s takes no value", a)}
			}
			continue
		}
		p, isStr := tf.strs[name]
		l, isList := tf.lists[name]
		if !isStr && !isList {
			return nil, usageError{fmt.Errorf("flag provided but not defined: %s", a)}
		}
		if !hasValue {
			if i+1 == len(args) {
				return nil, usageError{fmt.Errorf("flag needs an argument: %s", a)}
			}
			i++
			value = args[i]
		}
		if isStr {
			*p = value
		} else {
			*l = append(*l, value)
		}
	}
	return out, nil
}
