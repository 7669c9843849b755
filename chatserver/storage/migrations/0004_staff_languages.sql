-- The languages a staff member speaks, as language codes from the chat-language
-- list (service.profile.languages) joined by commas, e.g. "sv,en,ar"; empty
-- for none. Set with `chatserver staff languages`; take next prefers a youth
-- whose chosen chat language (else page language) is one of them
-- (docs/design/queue.md). Existing accounts speak none until set.
ALTER TABLE staff ADD COLUMN languages TEXT NOT NULL DEFAULT '';
