def aws_attack(fx):
    raise NotImplementedError


def k8s_attack(fx):
    raise NotImplementedError


def okta_attack(fx):
    raise NotImplementedError


def aws_benign(fx):
    raise NotImplementedError


def k8s_benign(fx):
    raise NotImplementedError


def okta_benign(fx):
    raise NotImplementedError


