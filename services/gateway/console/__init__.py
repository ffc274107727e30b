"""The reference console: its build helper (`spec`); the app itself is TypeScript."""
