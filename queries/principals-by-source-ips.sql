-- Principals with the most distinct source addresses: a person's credentials used from many
-- networks (token theft, password spraying from a botnet, a shared key), per source.
SELECT source,
       coalesce(principal_name, principal_id) AS principal,
       count(DISTINCT src_ip) AS source_ips,
       count(DISTINCT session_key) AS sessions,
       count(*) AS events
FROM events
WHERE src_ip IS NOT NULL
GROUP BY source, coalesce(principal_name, principal_id)
ORDER BY source_ips DESC, events DESC, source, principal
LIMIT 20
