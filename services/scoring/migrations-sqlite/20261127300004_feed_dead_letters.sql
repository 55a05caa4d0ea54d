-- Feed events the consumer could not read, parked with the reason instead of stopping the feed
-- (tierline_runtime::follower). The cursor moves past them; look at them and replay by hand.
CREATE TABLE feed_dead_letters (
    consumer  TEXT NOT NULL,
    position  TEXT NOT NULL,
    reason    TEXT NOT NULL,
    payload   BLOB NOT NULL,
    parked_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, position)
);
