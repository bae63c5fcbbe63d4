package dev.strata.image;

/**
 * An image or store problem the user can act on (unknown image, corrupt blob, hostile archive, full
 * disk...). The message is one line, without a "strata:" prefix; the CLI prints it as a user error.
 */
public class ImageException extends RuntimeException {
    public ImageException(String message) { super(message); }
    public ImageException(String message, Throwable cause) { super(message, cause); }
}
