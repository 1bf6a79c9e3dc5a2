"""The maintained list of names a model may use to identify itself or its maker.

Pure data, no imports from the project. ``fingerprints`` matches these case-insensitively and
only inside first-person self-identification phrases, so broad words ("Meta", "Solar", "Phi")
are safe here. Add new families and makers when a contestant of a new lineage is registered;
the caller's ``identity_terms`` (registered names, slugs, aliases) are added per call anyway.
"""

from __future__ import annotations

from typing import Final

MODEL_FAMILIES: Final[tuple[str, ...]] = (
    "ChatGPT",
    "GPT",
    "InstructGPT",
    "Claude",
    "Llama",
    "Code Llama",
    "Gemini",
    "Gemma",
    "Bard",
    "PaLM",
    "Mistral",
    "Mixtral",
    "Codestral",
    "Ministral",
    "Pixtral",
    "Qwen",
    "QwQ",
    "Tongyi Qianwen",
    "DeepSeek",
    "Phi",
    "Command R",
    "Command R+",
    "Command A",
    "Aya",
    "EXAONE",
    "SOLAR",
    "SmolLM",
    "Vicuna",
    "Alpaca",
    "Zephyr",
    "Falcon",
    "OLMo",
    "Grok",
    "Yi",
    "Nemotron",
    "InternLM",
    "Baichuan",
    "ChatGLM",
    "GLM",
    "Orca",
    "StableLM",
    "Starling",
    "OpenChat",
    "Hermes",
    "Granite",
    "Jamba",
    "Ernie",
    "Kimi",
    "HyperCLOVA X",
    "HyperCLOVA",
    "CLOVA X",
    "Kanana",
    "Mi:dm",
    "Copilot",
    "Bing Chat",
)

MAKERS: Final[tuple[str, ...]] = (
    "OpenAI",
    "Open AI",
    "Anthropic",
    "Meta",
    "Meta AI",
    "Facebook",
    "Google",
    "Google DeepMind",
    "DeepMind",
    "Mistral AI",
    "Alibaba",
    "Alibaba Cloud",
    "Qwen Team",
    "DeepSeek-AI",
    "Microsoft",
    "Cohere",
    "Cohere For AI",
    "LG AI Research",
    "LG",
    "Upstage",
    "Hugging Face",
    "HuggingFace",
    "TII",
    "Technology Innovation Institute",
    "Allen Institute for AI",
    "AI2",
    "xAI",
    "01.AI",
    "Zhipu AI",
    "Shanghai AI Laboratory",
    "Baidu",
    "Moonshot AI",
    "IBM",
    "NVIDIA",
    "AI21 Labs",
    "Stability AI",
    "LMSYS",
    "Nous Research",
    "Naver",
    "Kakao",
    "KT",
    "SK Telecom",
    "Amazon",
)

# Korean spellings; matched with Korean particle rules (a Hangul term never matches inside a
# longer Hangul word, so "라마" does not fire in "드라마" and "파이" not in "파이썬").
KOREAN_TERMS: Final[tuple[str, ...]] = (
    "챗GPT",
    "챗지피티",
    "지피티",
    "클로드",
    "라마",
    "제미나이",
    "제미니",
    "젬마",
    "미스트랄",
    "믹스트랄",
    "큐웬",
    "큐원",
    "통의천문",
    "딥시크",
    "엑사원",
    "솔라",
    "비쿠나",
    "파이",
    "바드",
    "하이퍼클로바X",
    "하이퍼클로바",
    "오픈AI",
    "오픈에이아이",
    "앤트로픽",
    "메타",
    "구글",
    "구글 딥마인드",
    "딥마인드",
    "알리바바",
    "알리바바 클라우드",
    "마이크로소프트",
    "코히어",
    "LG AI 연구원",
    "엘지",
    "업스테이지",
    "허깅페이스",
    "허깅 페이스",
    "네이버",
    "카카오",
)

# Chinese and Japanese spellings. Han terms match anywhere (no spaces in CJK text); a Katakana
# term never matches inside a longer Katakana word ("メタ" not in "メタデータ", "ラマ" not in
# "ドラマ"). Ordinary words (羊驼 "alpaca", 双子座 "Gemini" the constellation) are left out.
CJK_TERMS: Final[tuple[str, ...]] = (
    "通义千问",
    "通義千問",
    "千问",
    "阿里云",
    "阿里雲",
    "阿里巴巴",
    "文心一言",
    "百度",
    "智谱",
    "智譜",
    "月之暗面",
    "深度求索",
    "豆包",
    "字节跳动",
    "腾讯混元",
    "混元",
    "谷歌",
    "微软",
    "微軟",
    "克劳德",
    "克勞德",
    "クロード",
    "チャットGPT",
    "ジェミニ",
    "ジェミナイ",
    "グーグル",
    "メタ",
    "オープンAI",
    "アンソロピック",
    "アンスロピック",
    "マイクロソフト",
    "ミストラル",
    "ラマ",
)

# Names that are also ordinary words ("I am a falcon" in a poem, "I'm a Gemini" by star sign):
# matched only capitalised, and not right after "a"/"an".
COMMON_WORD_TERMS: Final[frozenset[str]] = frozenset(
    {
        "Alpaca",
        "Aya",
        "Bard",
        "Copilot",
        "Ernie",
        "Falcon",
        "Gemini",
        "Granite",
        "Hermes",
        "Jamba",
        "Kimi",
        "Mistral",
        "Orca",
        "Phi",
        "SOLAR",
        "Starling",
        "Vicuna",
        "Yi",
        "Zephyr",
        "Amazon",
        "Meta",
        "Llama",
    }
)

# Names that are also a thing in nature (the Mistral wind, Gemini the constellation, the llama):
# "the Mistral", "the Gemini constellation" are that thing, not the model.
NATURE_WORD_TERMS: Final[frozenset[str]] = frozenset(
    {"Alpaca", "Falcon", "Gemini", "Granite", "Llama", "Mistral", "Orca", "Vicuna", "Zephyr"}
)

# Names that are also people's first names: followed by a capitalised word that is no model
# variant ("Claude Monet", "Ernie Els") they name a person.
PERSONAL_NAME_TERMS: Final[frozenset[str]] = frozenset(
    {"Claude", "Ernie", "Kimi", "Hermes", "Gemini", "Mistral", "Llama", "Falcon", "Meta"}
)

KNOWN_IDENTITY_TERMS: Final[tuple[str, ...]] = MODEL_FAMILIES + MAKERS + KOREAN_TERMS + CJK_TERMS
