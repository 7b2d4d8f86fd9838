def render(fixtures):
    return ''
