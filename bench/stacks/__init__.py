"""Reference handlers for section 1: each imports one combination of DESIGN's building blocks
and nothing of ours, so the table shows what the stack costs before any code of ours.

They are not packages of the project: the cold-start section copies them into its scratch
directory, byte-compiles them like the build, and imports each as a top-level module.
"""
