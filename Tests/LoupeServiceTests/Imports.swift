// The shared test support (TempDir, runProcess, repositoryRoot) for every file of this target.
@_exported import LoupeTestSupport
