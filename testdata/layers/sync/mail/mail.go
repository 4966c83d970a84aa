// Shared types importing an engine.
package mail

import _ "example.com/m/conflict"
