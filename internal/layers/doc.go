// Package layers keeps the importer's imports pointing one way:
//
//	importer ← internal/* (one technology each) ← jobs ← cmd
//
// The domain (importer) imports nothing of ours; a technology package
// imports the domain only, never another technology package; jobs, the
// lifecycle of imports, may use them all; only cmd wires them together.
// Its test fails on an import that points the wrong way; make lint runs it.
package layers
