__title__ = "spacy-sapel"
__version__ = "0.1.0"
