"""humanseg: cut people out of photos at batch scale.

The installed package is one namespace: `humanseg.core`, `humanseg.web`, `humanseg.worker`,
`humanseg.ml` and `humanseg.migrations` come from the repository's top-level folders of the same
names; this folder holds only what sits above them all (the CLI and the `up` supervisor).
"""
