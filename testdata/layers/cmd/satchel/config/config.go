// The configuration loader importing something besides the YAML parser.
package config

import (
	_ "github.com/other/lib"
	_ "gopkg.in/yaml.v3"
)
