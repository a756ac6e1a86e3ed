// Package index will hold the per-team autocomplete index of the Quick Switcher (issue 4). So
// far it has the text folding every match goes through: Fold (case and accents) and Words (the
// separators PROTOCOL.md names: spaces, '-', '_', '.').
package index
