package dev.strata.cli;

/** A mistake of the user's (bad option, missing directory...): printed as one line, no stack trace. */
public class UserError extends RuntimeException {
    private final int exitCode;
    public UserError(String message) { this(message, 1); }
    public UserError(String message, int exitCode) { super(message); this.exitCode = exitCode; }
    public int exitCode() { return exitCode; }
}
