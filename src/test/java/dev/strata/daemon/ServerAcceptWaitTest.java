package dev.strata.daemon;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** How long the daemon's accept(2) waits: what is left of the idle time without mounts, a minute at most with. */
class ServerAcceptWaitTest {
    @Test void withoutMountsTheRestOfTheIdleTime() {
        assertEquals(300_000, Server.acceptWait(0, 0, 300_000));
        assertEquals(1_000, Server.acceptWait(0, 299_000, 300_000));
        assertEquals(1, Server.acceptWait(0, 300_000, 300_000), "never 0: SO_RCVTIMEO 0 waits for ever");
        assertEquals(1, Server.acceptWait(0, 400_000, 300_000));
    }

    @Test void withMountsAMinuteOrTheIdleTimeIfShorter() {
        assertEquals(60_000, Server.acceptWait(3, 0, 300_000));
        assertEquals(1_000, Server.acceptWait(1, 0, 1_000));
        assertEquals(1, Server.acceptWait(1, 0, 0));
    }
}
