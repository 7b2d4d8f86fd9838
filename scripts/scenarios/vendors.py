"""Record builders for the scenario fixtures, one per vendor format.

Every builder returns a plain dict shaped as the vendor writes the record (member names, nesting,
value types and formats), so the generated files read like real exports. Identifiers are derived
deterministically from their seed strings with SHA-256, never from a random source.

Python 3 standard library only.
"""

import base64
import datetime as dt
import hashlib

UTC = dt.timezone.utc

ALNUM_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def digest(*parts):
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()


def hexid(n, *parts):
    return digest(*parts).hex()[:n]


def uuid(*parts):
    h = digest(*parts).hex()
    return f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


def alnum(n, alphabet, *parts):
    d = digest(*parts)
    while len(d) < n:
        d += digest(d.hex())
    return "".join(alphabet[b % len(alphabet)] for b in d[:n])


def aws_id(prefix, *parts):
    """An AWS unique id: AKIA/ASIA keys are 20 characters, AROA/AIDA ids 21."""
    n = (20 if prefix in ("AKIA", "ASIA") else 21) - len(prefix)
    return prefix + alnum(n, ALNUM_UPPER, prefix, *parts)


def okta_id(prefix, *parts):
    """Okta object ids: 20 characters, `00u` users, `00g` groups, `0oa` apps ..."""
    return prefix + alnum(20 - len(prefix), BASE62, prefix, *parts)


def okta_session(*parts):
    return "idx" + alnum(22, BASE62, "sid", *parts)


def github_hashed_token(*parts):
    return base64.b64encode(digest("token", *parts)).decode()


def iso_s(t):
    """CloudTrail: whole seconds, `Z`."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(t):
    """Okta and most JSON APIs: milliseconds, `Z`."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def iso_us(t):
    """Kubernetes audit: microseconds, `Z`."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_7(t):
    """Entra: seven fractional digits."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}0Z"


def epoch_ms(t):
    return int(t.timestamp() * 1000)


def ct_expiration(t):
    """The credential expiry as CloudTrail writes it: `Oct 1, 2024, 11:00:00 AM`."""
    t = t.astimezone(UTC)
    hour = t.hour % 12 or 12
    return f"{t.strftime('%b')} {t.day}, {t.year}, {hour}:{t.strftime('%M:%S')} {'AM' if t.hour < 12 else 'PM'}"


# --------------------------------------------------------------------------------------------
# AWS CloudTrail
# --------------------------------------------------------------------------------------------


class IamUser:
    """An IAM user calling with its long-term access key."""

    def __init__(self, account, name, key=None):
        self.account = account
        self.name = name
        self.principal_id = aws_id("AIDA", account, name)
        self.key = key or aws_id("AKIA", account, name, "key1")

    @property
    def arn(self):
        return f"arn:aws:iam::{self.account}:user/{self.name}"

    def identity(self):
        return {
            "type": "IAMUser",
            "principalId": self.principal_id,
            "arn": self.arn,
            "accountId": self.account,
            "accessKeyId": self.key,
            "userName": self.name,
        }

    @property
    def session_key(self):
        return f"aws:{self.account}:iam-key:{self.key}"


class RoleSession:
    """A role session (temporary `ASIA…` key) as CloudTrail's `userIdentity` shows it."""

    def __init__(
        self,
        account,
        role,
        session_name,
        created,
        path="",
        mfa=False,
        source_identity=None,
        seed="",
        duration=3600,
        ec2_role_delivery=None,
    ):
        self.account = account
        # EC2 instance credentials (from the instance metadata service) carry the IMDS version
        # that delivered them; the session name is the instance id.
        self.ec2_role_delivery = ec2_role_delivery
        self.role = role
        self.path = path
        self.session_name = session_name
        self.created = created
        self.mfa = mfa
        self.source_identity = source_identity
        self.duration = duration
        self.role_id = aws_id("AROA", account, role)
        self.key = aws_id("ASIA", account, role, session_name, iso_s(created), seed)

    @property
    def role_arn(self):
        return f"arn:aws:iam::{self.account}:role/{self.path}{self.role}"

    @property
    def arn(self):
        return f"arn:aws:sts::{self.account}:assumed-role/{self.role}/{self.session_name}"

    @property
    def session_key(self):
        return f"aws:{self.account}:sts:{self.key}"

    def identity(self, invoked_by=None):
        context = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": self.role_id,
                "arn": self.role_arn,
                "accountId": self.account,
                "userName": self.role,
            },
            "webIdFederationData": {},
            "attributes": {
                "creationDate": iso_s(self.created),
                "mfaAuthenticated": "true" if self.mfa else "false",
            },
        }
        if self.source_identity:
            context["sourceIdentity"] = self.source_identity
        if self.ec2_role_delivery:
            context["ec2RoleDelivery"] = self.ec2_role_delivery
        ident = {
            "type": "AssumedRole",
            "principalId": f"{self.role_id}:{self.session_name}",
            "arn": self.arn,
            "accountId": self.account,
            "accessKeyId": self.key,
            "sessionContext": context,
        }
        if invoked_by:
            ident["invokedBy"] = invoked_by
        return ident


def _host(source, region):
    service = source.split(".")[0]
    if service in ("iam", "sts", "organizations"):
        return f"{service}.amazonaws.com"
    return f"{service}.{region}.amazonaws.com"


def ct_event(
    who,
    t,
    source,
    name,
    *,
    ip,
    ua,
    region="us-east-1",
    req=None,
    resp=None,
    extra=None,
    read_only=None,
    resources=None,
    data=False,
    error=None,
    host=None,
    invoked_by=None,
    seed="",
):
    identity = who.identity(invoked_by) if isinstance(who, RoleSession) else who.identity()
    service = source.split(".")[0]
    if source in ("iam.amazonaws.com", "organizations.amazonaws.com"):
        region = "us-east-1"
    rec = {
        "eventVersion": "1.10" if data else "1.09",
        "userIdentity": identity,
        "eventTime": iso_s(t),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": ua,
    }
    if error:
        rec["errorCode"], rec["errorMessage"] = error
    rec["requestParameters"] = req
    rec["responseElements"] = resp
    if extra is not None:
        rec["additionalEventData"] = extra
    event_id = uuid("ct", who.key, iso_s(t), name, seed, repr(req))
    if service == "s3":
        rec["requestID"] = hexid(16, "req", event_id).upper()
    else:
        rec["requestID"] = uuid("req", event_id)
    rec["eventID"] = event_id
    if read_only is None:
        read_only = name.startswith(("Get", "List", "Describe", "Head"))
    rec["readOnly"] = read_only
    if resources:
        rec["resources"] = resources
    rec["eventType"] = "AwsApiCall"
    rec["managementEvent"] = not data
    rec["recipientAccountId"] = who.account
    rec["eventCategory"] = "Data" if data else "Management"
    if not (isinstance(ip, str) and ip.endswith(".amazonaws.com")):
        rec["tlsDetails"] = {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": host or _host(source, region),
        }
    return rec


def session_token(*parts):
    return "IQoJb3JpZ2luX2VjE" + alnum(180, BASE62 + "/+", "token", *parts)


def ct_assume_role(
    caller,
    t,
    child,
    *,
    ip,
    ua,
    region="us-east-1",
    source_identity=None,
    external_id=None,
):
    """`sts:AssumeRole` by `caller`, issuing `child` (a RoleSession created at `t`)."""
    req = {"roleArn": child.role_arn, "roleSessionName": child.session_name}
    if child.duration != 3600:
        req["durationSeconds"] = child.duration
    if external_id:
        req["externalId"] = external_id
    if source_identity:
        req["sourceIdentity"] = source_identity
    resp = {
        "credentials": {
            "accessKeyId": child.key,
            "sessionToken": session_token(child.key),
            "expiration": ct_expiration(t + dt.timedelta(seconds=child.duration)),
        },
        "assumedRoleUser": {
            "assumedRoleId": f"{child.role_id}:{child.session_name}",
            "arn": child.arn,
        },
    }
    if source_identity:
        resp["sourceIdentity"] = source_identity
    return ct_event(
        caller,
        t,
        "sts.amazonaws.com",
        "AssumeRole",
        ip=ip,
        ua=ua,
        region=region,
        req=req,
        resp=resp,
        read_only=True,
        resources=[
            {"accountId": child.account, "type": "AWS::IAM::Role", "ARN": child.role_arn}
        ],
        host=f"sts.{region}.amazonaws.com",
    )


def s3_object_event(
    who,
    t,
    name,
    bucket,
    key,
    *,
    ip,
    ua,
    size=0,
    region="us-east-1",
    invoked_by=None,
    error=None,
):
    """An S3 object-level data event (GetObject, PutObject, HeadObject …)."""
    host = f"{bucket}.s3.{region}.amazonaws.com"
    req = {"bucketName": bucket, "Host": host, "key": key}
    if name == "PutObject":
        req["x-amz-server-side-encryption"] = "AES256"
    extra = {
        "SignatureVersion": "SigV4",
        "CipherSuite": "TLS_AES_128_GCM_SHA256",
        "bytesTransferredIn": size if name == "PutObject" else 0,
        "AuthenticationMethod": "AuthHeader",
        "x-amz-id-2": base64.b64encode(digest("id2", who.key, iso_s(t), key)).decode(),
        "bytesTransferredOut": size if name == "GetObject" and not error else 0,
    }
    resp = None
    if name == "PutObject":
        resp = {"x-amz-server-side-encryption": "AES256"}
    return ct_event(
        who,
        t,
        "s3.amazonaws.com",
        name,
        ip=ip,
        ua=ua,
        region=region,
        req=req,
        resp=resp,
        extra=extra,
        read_only=name in ("GetObject", "HeadObject"),
        resources=[
            {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
            {"accountId": who.account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"},
        ],
        data=True,
        error=error,
        host=host,
        invoked_by=invoked_by,
        seed=key,
    )


def s3_list_event(who, t, bucket, prefix, *, ip, ua, region="us-east-1", invoked_by=None):
    host = f"{bucket}.s3.{region}.amazonaws.com"
    req = {
        "list-type": "2",
        "bucketName": bucket,
        "encoding-type": "url",
        "prefix": prefix,
        "delimiter": "/",
        "Host": host,
    }
    extra = {
        "SignatureVersion": "SigV4",
        "CipherSuite": "TLS_AES_128_GCM_SHA256",
        "bytesTransferredIn": 0,
        "AuthenticationMethod": "AuthHeader",
        "x-amz-id-2": base64.b64encode(digest("id2", who.key, iso_s(t), prefix)).decode(),
        "bytesTransferredOut": 4187,
    }
    return ct_event(
        who,
        t,
        "s3.amazonaws.com",
        "ListObjects",
        ip=ip,
        ua=ua,
        region=region,
        req=req,
        extra=extra,
        read_only=True,
        resources=[
            {"accountId": who.account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}
        ],
        data=True,
        host=host,
        invoked_by=invoked_by,
        seed=prefix,
    )


# --------------------------------------------------------------------------------------------
# Okta System Log
# --------------------------------------------------------------------------------------------


class Place:
    """Where a request comes from: address, network owner and geography."""

    def __init__(self, ip, city, state, country, postal, lat, lon, asn, as_org, isp, domain, proxy=False):
        self.ip = ip
        self.city = city
        self.state = state
        self.country = country
        self.postal = postal
        self.lat = lat
        self.lon = lon
        self.asn = asn
        self.as_org = as_org
        self.isp = isp
        self.domain = domain
        self.proxy = proxy

    def at(self, ip):
        p = Place.__new__(Place)
        p.__dict__.update(self.__dict__)
        p.ip = ip
        return p

    def geo(self):
        return {
            "city": self.city,
            "state": self.state,
            "country": self.country,
            "postalCode": self.postal,
            "geolocation": {"lat": self.lat, "lon": self.lon},
        }


class OktaUser:
    def __init__(self, login, display):
        self.login = login
        self.display = display
        self.id = okta_id("00u", login)

    def actor(self):
        return {
            "id": self.id,
            "type": "User",
            "alternateId": self.login,
            "displayName": self.display,
            "detailEntry": None,
        }

    def target(self):
        return {
            "id": self.id,
            "type": "User",
            "alternateId": self.login,
            "displayName": self.display,
            "detailEntry": None,
        }


class Browser:
    def __init__(self, raw, os_name, browser, device="Computer"):
        self.raw = raw
        self.os = os_name
        self.browser = browser
        self.device = device


LEGACY = {
    "user.session.start": "core.user_auth.login_success",
    "user.authentication.auth_via_mfa": "core.user.factor.attempt_success",
    "user.authentication.sso": "app.auth.sso",
    "user.session.end": "core.user_auth.logout_success",
    "user.account.privilege.grant": "core.user.admin_privilege.granted",
    "group.user_membership.add": "core.user_group_member.user_add",
    "user.mfa.okta_verify.deny_push": "core.user.factor.attempt_fail",
    "system.push.send_factor_verify_push": None,
    "user.session.access_admin_app": None,
    "policy.evaluate_sign_on": None,
    "user.lifecycle.deactivate": "core.user.config.user_deactivated",
    "user.lifecycle.suspend": "core.user.config.user_suspended",
    "policy.rule.update": None,
    "user.account.lock": "core.user_auth.account_locked",
    "application.user_membership.add": "app.generic.provision.assign_user_to_app",
    "user.mfa.factor.reset_all": "core.user.factor.reset_all",
    "app.oauth2.as.token.grant.access_token": "app.oauth2.as.token.grant.access_token_success",
}

MESSAGES = {
    "user.session.start": "User login to Okta",
    "user.authentication.auth_via_mfa": "Authentication of user via MFA",
    "user.authentication.sso": "User single sign on to app",
    "user.session.end": "User logout from Okta",
    "user.account.privilege.grant": "Grant user privilege",
    "group.user_membership.add": "Add user to group membership",
    "user.mfa.okta_verify.deny_push": "User rejected Okta push verify",
    "system.push.send_factor_verify_push": "A push notification was sent to the user's Okta Verify app",
    "user.session.access_admin_app": "User accessing Okta admin app",
    "policy.evaluate_sign_on": "Evaluation of sign-on policy",
    "user.lifecycle.deactivate": "Deactivate Okta user",
    "user.lifecycle.suspend": "Suspend Okta user",
    "policy.rule.update": "Update policy rule",
    "user.account.lock": "Max sign in attempts exceeded",
    "application.user_membership.add": "Add user to application membership",
    "user.mfa.factor.reset_all": "Reset all factors for user",
    "app.oauth2.as.token.grant.access_token": "OAuth2 access token is granted",
    "user.account.reset_password": "Fire password reset for user",
}

URIS = {
    "user.session.start": "/idp/idx/identify",
    "user.authentication.auth_via_mfa": "/idp/idx/challenge/answer",
    "user.mfa.okta_verify.deny_push": "/idp/idx/authenticators/poll",
    "system.push.send_factor_verify_push": "/idp/idx/challenge",
    "user.session.end": "/login/signout",
    "user.session.access_admin_app": "/admin/sso/callback",
    "policy.evaluate_sign_on": "/idp/idx/identify",
    "user.account.lock": "/idp/idx/challenge/answer",
}


def okta_event(
    t,
    event_type,
    actor,
    session,
    place,
    browser,
    *,
    result="SUCCESS",
    reason=None,
    targets=(),
    debug=None,
    provider=None,
    credential_type=None,
    severity="INFO",
    seed="",
):
    uid = uuid("okta", session, iso_ms(t), event_type, seed)
    request_id = alnum(24, BASE62, "okta-req", uid)
    uri = (debug or {}).pop("requestUri", None) or URIS.get(event_type, "/api/v1/users")
    debug_data = {"requestId": request_id, "requestUri": uri, "url": uri + "?"}
    if debug:
        debug_data.update(debug)
    if event_type in ("user.session.start", "user.authentication.auth_via_mfa", "user.mfa.okta_verify.deny_push"):
        debug_data["dtHash"] = hexid(64, "dt", session, browser.raw)
    geo = place.geo()
    return {
        "actor": actor.actor(),
        "client": {
            "userAgent": {"rawUserAgent": browser.raw, "os": browser.os, "browser": browser.browser},
            "zone": "null",
            "device": browser.device,
            "id": None,
            "ipAddress": place.ip,
            "geographicalContext": geo,
        },
        "device": None,
        "authenticationContext": {
            "authenticationProvider": provider,
            "credentialProvider": None,
            "credentialType": credential_type,
            "issuer": None,
            "interface": None,
            "authenticationStep": 0,
            "rootSessionId": session,
            "externalSessionId": session,
        },
        "displayMessage": MESSAGES.get(event_type, event_type),
        "eventType": event_type,
        "outcome": {"result": result, "reason": reason},
        "published": iso_ms(t),
        "securityContext": {
            "asNumber": place.asn,
            "asOrg": place.as_org,
            "isp": place.isp,
            "domain": place.domain,
            "isProxy": place.proxy,
        },
        "severity": severity,
        "debugContext": {"debugData": debug_data},
        "legacyEventType": LEGACY.get(event_type),
        "transaction": {"type": "WEB", "id": request_id, "detail": {}},
        "uuid": uid,
        "version": "0",
        "request": {"ipChain": [{"ip": place.ip, "geographicalContext": geo, "version": "V4", "source": None}]},
        "target": list(targets),
    }


def okta_target(kind, oid, alternate, display):
    return {"id": oid, "type": kind, "alternateId": alternate, "displayName": display, "detailEntry": None}


# --------------------------------------------------------------------------------------------
# Microsoft Entra sign-ins (Microsoft Graph shape)
# --------------------------------------------------------------------------------------------


def entra_signin(
    t,
    *,
    tenant,
    user_id,
    upn,
    display,
    session_id,
    ip,
    asn,
    city,
    state,
    country,
    ua,
    device_os,
    browser,
    error_code=0,
    failure_reason=None,
    details=None,
    requirement="multiFactorAuthentication",
    app=("4765445b-32c6-49b0-83e6-1d93765276ca", "OfficeHome"),
    resource=("00000003-0000-0000-c000-000000000000", "Microsoft Graph"),
    correlation=None,
    methods=None,
    device=None,
    seed="",
):
    """`device`: (deviceId, displayName, trustType) of a device Entra knows (compliant and
    managed); `None`: a device it does not know (Graph then writes empty strings)."""
    sid = uuid("entra-signin", session_id, iso_7(t), error_code, seed)
    return {
        "id": sid,
        "createdDateTime": iso_s(t),
        "userDisplayName": display,
        "userPrincipalName": upn,
        "userId": user_id,
        "userType": "member",
        "appId": app[0],
        "appDisplayName": app[1],
        "ipAddress": ip,
        "autonomousSystemNumber": asn,
        "clientAppUsed": "Browser",
        "userAgent": ua,
        "correlationId": correlation or uuid("corr", sid),
        "conditionalAccessStatus": "success" if error_code == 0 else "notApplied",
        "isInteractive": True,
        "signInEventTypes": ["interactiveUser"],
        "authenticationProtocol": "none",
        "authenticationRequirement": requirement,
        "authenticationMethodsUsed": methods if methods is not None else ["Password"],
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes_v2": [],
        "resourceDisplayName": resource[1],
        "resourceId": resource[0],
        "homeTenantId": tenant,
        "resourceTenantId": tenant,
        "crossTenantAccessType": "none",
        "sessionId": session_id,
        "uniqueTokenIdentifier": base64.urlsafe_b64encode(digest("uti", sid)[:16]).decode().rstrip("="),
        "tokenIssuerName": "",
        "tokenIssuerType": "AzureAD",
        "incomingTokenType": "none",
        "status": {
            "errorCode": error_code,
            "failureReason": failure_reason or ("Other." if error_code == 0 else str(error_code)),
            "additionalDetails": details,
        },
        "deviceDetail": {
            "deviceId": device[0] if device else "",
            "displayName": device[1] if device else "",
            "operatingSystem": device_os,
            "browser": browser,
            "isCompliant": bool(device),
            "isManaged": bool(device),
            "trustType": device[2] if device else "",
        },
        "location": {
            "city": city,
            "state": state,
            "countryOrRegion": country,
            "geoCoordinates": {"altitude": None, "latitude": None, "longitude": None},
        },
        "appliedConditionalAccessPolicies": [],
    }


# --------------------------------------------------------------------------------------------
# Kubernetes audit
# --------------------------------------------------------------------------------------------


class K8sCaller:
    """An authenticated API caller: a service-account token (JTI) or a client certificate."""

    def __init__(self, username, uid, groups, *, jti=None, x509=None, pod=None, node=None):
        self.username = username
        self.uid = uid
        self.groups = groups
        self.jti = jti
        self.x509 = x509
        self.pod = pod
        self.node = node

    def user(self):
        u = {"username": self.username, "uid": self.uid, "groups": list(self.groups)}
        extra = {}
        if self.jti:
            extra["authentication.kubernetes.io/credential-id"] = [f"JTI={self.jti}"]
            if self.node:
                extra["authentication.kubernetes.io/node-name"] = [self.node]
                extra["authentication.kubernetes.io/node-uid"] = [uuid("node", self.node)]
            if self.pod:
                extra["authentication.kubernetes.io/pod-name"] = [self.pod]
                extra["authentication.kubernetes.io/pod-uid"] = [uuid("pod", self.pod)]
        if self.x509:
            extra["authentication.kubernetes.io/credential-id"] = [f"X509SHA256={self.x509}"]
        if extra:
            u["extra"] = extra
        return u

    @property
    def session_key(self):
        if self.jti:
            return f"k8s:jti:{self.jti}"
        if self.x509:
            return f"k8s:x509:{self.x509}"
        return f"k8s:user:{self.username}"


RBAC = "rbac.authorization.k8s.io"


def k8s_event(
    t,
    caller,
    verb,
    resource,
    *,
    ip,
    ua,
    namespace=None,
    name=None,
    api_group="",
    api_version="v1",
    subresource=None,
    code=200,
    reason=None,
    impersonate=None,
    request_object=None,
    response_object=None,
    latency_ms=4,
    uri=None,
    seed="",
):
    audit_id = uuid("k8s", caller.username, iso_us(t), verb, resource, name, seed)
    if uri is None:
        base = "/api/v1" if api_group == "" else f"/apis/{api_group}/{api_version}"
        path = base
        if namespace:
            path += f"/namespaces/{namespace}"
        path += f"/{resource}"
        if name and verb not in ("create", "list", "watch"):
            path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
        if verb == "create":
            path += "?fieldManager=kubectl-create&fieldValidation=Strict"
        elif verb == "list":
            path += "?limit=500"
        uri = path
    level = "RequestResponse" if request_object is not None else "Metadata"
    rec = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": caller.user(),
    }
    if impersonate:
        rec["impersonatedUser"] = impersonate
    rec["sourceIPs"] = [ip]
    rec["userAgent"] = ua
    obj = {"resource": resource}
    if namespace:
        obj["namespace"] = namespace
    if name:
        obj["name"] = name
    if api_group:
        obj["apiGroup"] = api_group
    obj["apiVersion"] = api_version
    if subresource:
        obj["subresource"] = subresource
    rec["objectRef"] = obj
    status = {"metadata": {}, "code": code}
    if code >= 400:
        status["status"] = "Failure"
        status["reason"] = {403: "Forbidden", 404: "NotFound", 401: "Unauthorized"}.get(code, "Failure")
        status["message"] = (
            f'{resource} "{name}" is forbidden: User "{impersonate["username"] if impersonate else caller.username}" '
            f'cannot {verb} resource "{resource}" in API group "{api_group}"'
            + (f' in the namespace "{namespace}"' if namespace else " at the cluster scope")
        )
    rec["responseStatus"] = status
    if request_object is not None:
        rec["requestObject"] = request_object
    if response_object is not None:
        rec["responseObject"] = response_object
    rec["requestReceivedTimestamp"] = iso_us(t - dt.timedelta(milliseconds=latency_ms))
    rec["stageTimestamp"] = iso_us(t)
    ann = {"authorization.k8s.io/decision": "allow" if code != 403 else "forbid"}
    ann["authorization.k8s.io/reason"] = reason if reason is not None else ""
    rec["annotations"] = ann
    return rec


# --------------------------------------------------------------------------------------------
# GitHub audit log (enterprise audit-log API / streaming)
# --------------------------------------------------------------------------------------------


def github_event(
    t,
    action,
    *,
    actor,
    actor_id,
    ip,
    country,
    ua,
    org="northwind-labs",
    org_id=81234567,
    business="northwind",
    business_id=9123,
    repo=None,
    repo_id=None,
    public=False,
    token=None,
    token_id=None,
    token_scopes=None,
    access_type=None,
    bot=False,
    extra=None,
    seed="",
):
    ms = epoch_ms(t)
    rec = {
        "@timestamp": ms,
        "_document_id": base64.urlsafe_b64encode(digest("gh", actor, ms, action, repo, seed)[:16]).decode().rstrip("="),
        "action": action,
        "actor": actor,
        "actor_id": actor_id,
        "actor_ip": ip,
        "actor_is_bot": bot,
        "actor_location": {"country_code": country},
        "business": business,
        "business_id": business_id,
        "org": org,
        "org_id": org_id,
        "user_agent": ua,
        "created_at": ms,
    }
    if repo:
        full = f"{org}/{repo}"
        rec.update(
            {
                "repo": full,
                "repo_id": repo_id,
                "repository": full,
                "repository_id": repo_id,
                "repository_public": public,
                "visibility": "public" if public else "private",
            }
        )
    if token:
        rec["hashed_token"] = token
        rec["programmatic_access_type"] = access_type
        if token_id is not None:
            rec["token_id"] = token_id
        if token_scopes:
            rec["token_scopes"] = token_scopes
    if action.startswith("git."):
        rec["transport_protocol"] = 1
        rec["transport_protocol_name"] = "http"
        rec["operation_type"] = "access"
    if extra:
        rec.update(extra)
    return rec
