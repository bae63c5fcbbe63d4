package dev.strata.inspect;

/**
 * A problem with what the user asked to inspect (a layer directory that does not exist, a path outside
 * any mount...). The message is one line meant for the user; the CLI prints it after "strata: ".
 */
public final class InspectException extends RuntimeException {
    public InspectException(String message) { super(message); }
}
