-- A JWT HMAC secret lives with its key only: approved requests drop their copy.
UPDATE key_requests SET jwt_secret = '' WHERE approved;
