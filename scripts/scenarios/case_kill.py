def attack(fx):
    raise NotImplementedError


def benign(fx):
    raise NotImplementedError


