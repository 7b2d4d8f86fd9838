-- Sessions killed per rule per day: how often each rule ended a session or revoked a
-- credential, and how many distinct sessions that was (a rule that starts killing far more
-- than usual after a change is the one to look at).
SELECT date,
       rule_id,
       count(*) AS kills,
       count(DISTINCT session_key) AS sessions
FROM decisions
WHERE action IN ('revoke_session', 'revoke_credential')
GROUP BY date, rule_id
ORDER BY date, kills DESC, rule_id
