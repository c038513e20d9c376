-- Paging (issue #15, parts 3b and 6): pages to one person are coalesced.
--
-- The first page to a (channel, recipient) goes out at once and opens a window of
-- [paging] coalesce; further pages to them within the window are *held*: written as pending
-- deliveries with `coalesced_into` naming the digest delivery due when the window ends, and
-- never claimed on their own. When the digest's outcome is recorded, each held page gets the
-- same outcome (sent with the digest's provider message id, or dead with why), in that
-- transaction.

ALTER TABLE deliveries ADD COLUMN coalesced_into BIGINT REFERENCES deliveries (id);
CREATE INDEX deliveries_coalesced ON deliveries (coalesced_into) WHERE coalesced_into IS NOT NULL;

-- One row per (channel, recipient) ever paged with coalescing on: the current window's end and
-- the digest that window's held pages go out in (NULL while nothing is held).
CREATE TABLE page_windows (
    channel    TEXT    NOT NULL,
    recipient  TEXT    NOT NULL,
    window_end BIGINT  NOT NULL,                     -- UTC microseconds
    digest_id  BIGINT  REFERENCES deliveries (id),
    PRIMARY KEY (channel, recipient)
);
