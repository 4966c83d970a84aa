package config

import "fmt"

// unimplemented lists the keys whose features this version of satchel does
// not have yet. Such a key may only hold a value satchel already honours
// (its default, mostly), so that a file written for a later version fails
// loudly instead of being half obeyed. When a feature lands, delete its row
// (TestNotImplemented then asks for its test values to go too).
var unimplemented = []struct {
	key    string // path inside an account
	accept func(a *Account) bool
	def    string // the value to suggest, as written in YAML
}{}

// checkImplemented refuses the first key of accounts[i] that asks for a
// feature not built yet.
func (d *decoder) checkImplemented(a *Account, i int) {
	for _, u := range unimplemented {
		if d.err != nil || u.accept(a) {
			continue
		}
		key := fmt.Sprintf("accounts[%d].%s", i, u.key)
		d.fail(d.line(key, 0), key, "not implemented yet in this version of satchel; remove it or set it to %s", u.def)
	}
}
