def duration_scenario(fx):
    raise NotImplementedError


def privileged_attack(fx):
    raise NotImplementedError


def privileged_benign(fx):
    raise NotImplementedError


