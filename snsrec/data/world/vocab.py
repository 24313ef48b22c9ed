"""Vocabulary of the synthetic SNS world: topics, gazetteers, filler, harmful lexicons.

Data only (frozen dataclasses and tuples), no randomness: ``text.py`` samples from it.
Word lists are written as ``"a|b|c"`` strings and split once at import (cheap), which
keeps twenty-four topics readable on a few screens.

Harmful lexicons are built so that moderation is learnable but not a keyword match:
every slot mixes *obvious* phrases (containing one of the type's ``triggers``) with
*subtle* paraphrases and obfuscations that contain none, and ``text.py`` writes about
30% of harmful notes from the subtle phrases only. Topic vocabulary never contains a
trigger word; instead ``LEGIT`` sentences put words like "guaranteed", "cure" or "bet"
into safe finance / health / games / comedy notes, so a keyword filter misfires.
"""

from __future__ import annotations

from dataclasses import dataclass

from snsrec.data.schema import HARM_TYPES

__all__ = [
    "AD_EN", "AD_ZH", "CITIES", "CLICKBAIT_EN", "CLICKBAIT_ZH", "EMOJIS", "EMOTIVE_EN",
    "EMOTIVE_ZH", "ENTITY_LABELS", "FUNCTION_EN", "FUNCTION_ZH", "GENERIC_EN", "GENERIC_ZH",
    "HARM", "HARM_TYPES", "LEGIT", "N_TOPICS", "TOPICS", "TOPIC_NAMES", "HarmLexicon", "Topic",
]


def _w(text: str) -> tuple[str, ...]:
    """Split a ``|``-separated word list."""
    return tuple(s.strip() for s in text.split("|"))


@dataclass(frozen=True)
class Topic:
    name: str
    zh: str
    subcategories: tuple[str, ...]
    sub_words_en: tuple[tuple[str, ...], ...]
    sub_words_zh: tuple[tuple[str, ...], ...]
    words_en: tuple[str, ...]
    words_zh: tuple[str, ...]
    hashtags: tuple[str, ...]
    brands: tuple[str, ...]
    places: tuple[str, ...]
    products: tuple[str, ...]
    people: tuple[str, ...]
    gender_appeal: float


def _topic(name: str, zh: str, appeal: float, subs: str, sub_en: tuple[str, ...],
           sub_zh: tuple[str, ...], en: str, zh_words: str, tags: str, brands: str,
           places: str, products: str, people: str) -> Topic:
    return Topic(name=name, zh=zh, subcategories=_w(subs),
                 sub_words_en=tuple(_w(s) for s in sub_en),
                 sub_words_zh=tuple(_w(s) for s in sub_zh),
                 words_en=_w(en), words_zh=_w(zh_words), hashtags=_w(tags),
                 brands=_w(brands), places=_w(places), products=_w(products),
                 people=_w(people), gender_appeal=appeal)


TOPICS: tuple[Topic, ...] = (
    _topic(
        "food", "美食", 0.1, "baking|street_food|home_cooking",
        ("sourdough|croissant|oven|butter|proofing|pastry|flour|crumb|cheesecake|macaron",
         "night market|skewers|dumplings|noodle stall|stinky tofu|pancake|food stall|fried chicken",
         "stir fry|braised pork|rice cooker|family dinner|wok|soup|meal prep|tomato egg"),
        ("烘焙|面包|蛋糕|黄油|烤箱|可颂|戚风", "夜市|烤串|小吃|煎饼|臭豆腐|路边摊|炸鸡",
         "家常菜|红烧肉|炒菜|电饭煲|汤|便当|番茄炒蛋"),
        "recipe|flavor|taste|spicy|sweet|savory|crispy|tender|chef|kitchen|ingredients|sauce"
        "|garlic|ginger|noodles|rice|dessert|snack|brunch|restaurant|menu|portion|seasoning"
        "|umami|juicy|fresh|homemade|plate|bite|cooking",
        "好吃|美味|香|辣|甜|酥脆|食谱|厨房|调料|餐厅|菜单|米饭|面条|甜品|早午餐|探店|味道|口感"
        "|下饭|鲜",
        "foodie|美食分享|homecooking|探店|baking|夜市美食|recipeoftheday|吃货日常",
        "Golden Wok|Butter Lane|Mala House|Crumb & Co", "Nanluoguxiang|Jianguo Market|"
        "Old Street Bakery|Riverside Food Court", "air fryer|cast iron pan|stand mixer|chili oil",
        "Chef Wang|Lily Chen|Auntie Mei|Marco Rossi"),
    _topic(
        "travel", "旅行", 0.2, "city_walk|beach_holiday|road_trip",
        ("old town|alleyway|city walk|cafe street|museum|tram|bookshop|rooftop view",
         "beach|island|snorkeling|sunset|resort|seaside|sandbar|coral reef",
         "road trip|highway|campervan|scenic drive|mountain pass|gas station|roadside|detour"),
        ("城市漫步|老街|胡同|博物馆|咖啡街|天台", "海边|海岛|浮潜|日落|度假村|沙滩",
         "自驾|公路|房车|盘山路|服务区|风景"),
        "itinerary|trip|flight|hotel|hostel|booking|passport|luggage|backpack|guide|local"
        "|sightseeing|landmark|view|route|map|budget|ticket|train|airport|tour|journey|explore"
        "|weekend|holiday|vacation|day trip|souvenir|check-in|photo spot",
        "旅行|攻略|行程|酒店|民宿|机票|高铁|景点|打卡|路线|门票|出发|周末|假期|当地|风景|拍照"
        "|特产|游客|小众",
        "travel|旅行攻略|citywalk|周末去哪儿|roadtrip|海岛游|wanderlust|小众景点",
        "SkyTrip|Wander Air|Lotus Hotels|RoadMate", "West Lake|Gulangyu|Erhai Lake|Sanya Bay",
        "travel pillow|packing cubes|rail pass|portable charger",
        "Nina Travels|Leo Zhang|Captain Hu|Sara Lin"),
    _topic(
        "beauty", "美妆", 0.8, "skincare|makeup|haircare",
        ("serum|moisturizer|sunscreen|toner|cleanser|retinol|hydration|barrier repair",
         "foundation|lipstick|eyeliner|blush|concealer|eyeshadow palette|highlighter|setting spray",
         "shampoo|conditioner|hair mask|scalp care|curls|hair oil|blow dry|split ends"),
        ("护肤|精华|面霜|防晒|水乳|保湿", "彩妆|口红|粉底|眼影|腮红|遮瑕", "洗发水|护发|发膜|头皮|卷发|发油"),
        "glow|skin|pores|texture|routine|dewy|matte|shade|swatch|pigment|formula|fragrance"
        "|gentle|sensitive|oily|dry skin|tone|look|brush|sponge|mirror|vanity|glam|natural"
        "|layering|finish|lasting|blend|hydrating|beauty",
        "美妆|护肤|素颜|肤质|毛孔|干皮|油皮|敏感肌|色号|试色|妆容|持妆|质地|成分|化妆|底妆|美白"
        "|补水|精致|好物",
        "beauty|护肤分享|makeup|skincare|美妆好物|平价彩妆|glowup|化妆教程",
        "Rosy Lab|Dewdrop|Velvet Muse|Pure Petal", "Sephora Nanjing Road|Beauty Loft|"
        "Glow Studio|Taikoo Li", "vitamin C serum|cushion compact|lip tint|clay mask",
        "Jessica Ma|Dr. Amy Xu|Coco Li|Hana Kim"),
    _topic(
        "fashion", "穿搭", 0.6, "streetwear|office_wear|vintage",
        ("hoodie|sneakers|oversized tee|cargo pants|bucket hat|streetwear drop|layering|tote",
         "blazer|trousers|loafers|shirt dress|capsule wardrobe|pencil skirt|trench coat|office look",
         "vintage|thrift|denim jacket|cardigan|flea market|retro|second hand|floral dress"),
        ("潮牌|卫衣|球鞋|工装裤|渔夫帽|街头", "通勤|西装|衬衫|乐福鞋|半身裙|风衣",
         "复古|古着|二手|牛仔外套|开衫|碎花裙"),
        "outfit|style|look|fit|color|pattern|fabric|cotton|linen|wool|accessories|bag|belt"
        "|jewelry|size|petite|tall|casual|chic|minimal|neutral|trend|season|closet|mix and match"
        "|silhouette|tailored|comfy|ootd|wardrobe",
        "穿搭|搭配|显瘦|显高|小个子|配色|面料|衣橱|单品|风格|通勤|日常|氛围|气质|春夏|秋冬|基础款"
        "|配饰|包包|鞋子",
        "ootd|穿搭分享|fashion|每日穿搭|streetstyle|复古穿搭|通勤穿搭|lookbook",
        "Urban Thread|Mono Studio|Maple Denim|Linen Lane", "Sanlitun|Xintiandi|Vintage Alley|"
        "Harbour City", "white sneakers|wool coat|silk scarf|canvas tote",
        "Vivian Wu|Kai Ren|Mia Zhou|Stylist Tang"),
    _topic(
        "fitness", "健身", -0.1, "strength_training|yoga|running",
        ("deadlift|squat|bench press|dumbbells|progressive overload|protein|reps|barbell",
         "yoga mat|downward dog|stretching|breathing|flexibility|flow|balance pose|meditation",
         "running shoes|pace|5k|half marathon|intervals|cadence|long run|trail run"),
        ("力量训练|深蹲|硬拉|哑铃|增肌|蛋白粉", "瑜伽|拉伸|体态|呼吸|冥想|柔韧",
         "跑步|配速|马拉松|跑鞋|晨跑|间歇跑"),
        "workout|gym|training|muscle|cardio|core|abs|warm up|cool down|sweat|coach|routine"
        "|progress|goal|body|strength|endurance|recovery|rest day|energy|posture|form|sets"
        "|weights|plan|beginner|stamina|heart rate|mobility|fit",
        "健身|运动|减脂|增肌|训练|打卡|教练|体脂|腹肌|燃脂|自律|有氧|核心|热身|拉伸|饮食|计划|坚持"
        "|体能|线条",
        "fitness|健身打卡|workout|减脂|gymlife|跑步|瑜伽日常|自律",
        "IronPeak|FlowFit|Stride|CoreLab", "Olympic Forest Park|City Gym|Riverside Track|"
        "Lotus Yoga Studio", "resistance bands|foam roller|smart watch|kettlebell",
        "Coach Li|Emma Fit|Jason Wu|Yogi Lan"),
    _topic(
        "pets", "萌宠", 0.3, "cats|dogs|small_pets",
        ("kitten|cat tree|litter|purring|whiskers|cat food|scratching post|tabby",
         "puppy|leash|dog park|walkies|golden retriever|corgi|fetch|chew toy",
         "hamster|rabbit|guinea pig|parrot|cage|hay|turtle|aquarium"),
        ("猫咪|小猫|猫砂|猫粮|逗猫棒|橘猫", "狗狗|遛狗|柯基|金毛|狗粮|小狗", "仓鼠|兔子|鹦鹉|乌龟|鱼缸|龙猫"),
        "pet|cute|fluffy|adopt|vet|grooming|treats|toy|nap|paws|fur|bath|training|walk|play"
        "|cuddle|rescue|shelter|bowl|bed|collar|sleepy|silly|clingy|healthy|feeding|shedding"
        "|owner|companion|furbaby",
        "萌宠|可爱|毛孩子|领养|铲屎官|宠物医院|洗澡|零食|玩具|撸猫|掉毛|驱虫|疫苗|治愈|日常|陪伴"
        "|小可爱|萌|粘人|睡觉",
        "pets|萌宠日常|catsofinstagram|铲屎官|doglife|领养代替购买|cute|毛孩子",
        "Paw Pantry|WhiskerCo|HappyTail|PetNest", "Paws Cafe|Sunny Dog Park|City Vet Clinic|"
        "Happy Shelter", "self-cleaning litter box|pet camera|slow feeder|cat tunnel",
        "Mochi|Doudou|Dr. Fang|Lucky"),
    _topic(
        "tech", "数码", -0.6, "smartphones|laptops|smart_home",
        ("smartphone|camera bump|battery life|fast charging|screen|foldable|phone case|chipset",
         "laptop|keyboard|trackpad|ultrabook|ports|thermals|display|workstation",
         "smart speaker|robot vacuum|smart bulb|router|sensor|automation|smart lock|hub"),
        ("手机|续航|快充|屏幕|折叠屏|拍照", "笔记本|键盘|轻薄本|接口|散热|显示器", "智能家居|扫地机器人|路由器|智能音箱|门锁|传感器"),
        "specs|performance|benchmark|update|software|app|settings|upgrade|setup|unboxing|review"
        "|storage|memory|processor|wireless|bluetooth|charger|cable|gadget|device|design"
        "|price|value|speed|tips|hack|feature|accessory|digital|tech",
        "数码|开箱|测评|配置|性能|系统|更新|设置|参数|充电器|蓝牙|耳机|配件|性价比|升级|体验|科技|好物"
        "|续航|效率",
        "tech|数码测评|unboxing|开箱|gadgets|科技好物|setup|桌面改造",
        "Nova|Pixelon|Orbit Labs|Kite Audio", "Zhongguancun|Huaqiangbei|Tech Mall|Apple Store "
        "Sanlitun", "noise cancelling earbuds|mechanical keyboard|4K monitor|USB-C hub",
        "Tech Tony|Alan Guo|Yuki Sato|Ming Review"),
    _topic(
        "parenting", "育儿", 0.7, "newborn|toddler|early_learning",
        ("newborn|diaper|swaddle|night feed|formula|baby monitor|colic|onesie",
         "toddler|tantrum|potty training|nap time|picky eater|playground|sippy cup|first words",
         "picture book|phonics|flash cards|montessori|puzzle|counting|kindergarten|story time"),
        ("新生儿|尿布|喂奶|奶粉|襁褓|月子", "宝宝|辅食|午睡|如厕训练|游乐场|哄睡", "绘本|早教|识字|拼图|幼儿园|亲子阅读"),
        "baby|kids|mom|dad|family|parenting|sleep|milestone|routine|growth|learning|play|care"
        "|stroller|car seat|bath|teeth|feeding|snuggle|giggle|tired|patience|development|tips"
        "|checklist|little one|weekend|home|school|laugh",
        "育儿|宝宝|宝妈|亲子|成长|带娃|早教|睡眠|喂养|辅食|安全|陪伴|耐心|二胎|幼儿|哭闹|习惯|妈妈"
        "|爸爸|家庭",
        "parenting|育儿经验|momlife|宝宝日常|亲子时光|新手妈妈|toddlerlife|早教",
        "Little Sprout|BabyBloom|Tiny Steps|Kiddo Box", "Children's Park|Kids Museum|"
        "Maternity Center|Rainbow Kindergarten", "baby carrier|bottle warmer|play mat|night light",
        "Mama Rui|Dr. Helen Sun|Teacher Zhao|Daddy Jun"),
    _topic(
        "home", "家居", 0.4, "interior_design|organizing|plants",
        ("living room|sofa|rug|lighting|color palette|mood board|wallpaper|renovation",
         "storage boxes|decluttering|label maker|closet system|drawer|pantry|shelf|minimalism",
         "monstera|succulent|watering|potting soil|grow light|balcony garden|pothos|repotting"),
        ("客厅|沙发|装修|灯光|软装|地毯", "收纳|断舍离|储物|整理|抽屉|衣柜", "绿植|多肉|龟背竹|阳台花园|浇水|换盆"),
        "home|room|cozy|decor|space|apartment|rental|makeover|before and after|corner|desk"
        "|bedroom|kitchen|bathroom|window|curtains|furniture|wood|warm|clean|tidy|layout"
        "|budget|style|texture|candle|frame|vase|bookshelf|nook",
        "家居|房间|出租屋|改造|布置|温馨|氛围感|卧室|书桌|厨房|卫生间|家具|收纳|整洁|清洁|小户型"
        "|原木|北欧|好物|生活",
        "homedecor|家居好物|roomtour|出租屋改造|收纳|interiordesign|plantlover|绿植",
        "Nordic Nest|Oak & Co|Casa Calm|GreenLeaf", "IKEA Xuhui|Flower Market|Home Expo|"
        "Design Week Hall", "storage cart|linen curtains|floor lamp|self-watering pot",
        "Designer Qin|Anna Home|Uncle Bo|Lucy Plants"),
    _topic(
        "finance", "理财", -0.3, "budgeting|investing|saving",
        (("budget|spreadsheet|expense tracker|monthly bills|no spend challenge|envelope method"
          "|categories|cash flow"),
         "index fund|portfolio|dividends|stocks|bonds|diversification|rebalancing|long term",
         "savings account|emergency fund|interest rate|sinking fund|goal|frugal|coupons|piggy bank"),
        ("记账|预算|账单|开销|省钱挑战|现金流", "基金|定投|股票|债券|分红|资产配置", "存钱|储蓄|应急金|利率|攒钱|省钱"),
        "money|finance|invest|profit|returns|risk|salary|tax|debt|loan|credit card|bank"
        "|account|plan|strategy|market|fees|compound|retirement|assets|net worth|habit"
        "|financial literacy|spending|wealth|allocation|inflation|paycheck|numbers|report",
        "理财|存款|收益|风险|工资|税|负债|信用卡|银行|账户|复利|退休|资产|消费|习惯|规划|财务|通胀"
        "|投资|年终",
        "finance|理财小白|money|存钱|budgeting|基金定投|personalfinance|财务自由",
        "Harbor Bank|Clear Fund|PiggyPlan|Ledgerly", "Lujiazui|Finance Street|Bank Branch|"
        "Stock Exchange Hall", "budget planner|robo advisor|savings app|money jar",
        "Advisor Chen|Grace Money|Professor Liu|Frugal Fang"),
    _topic(
        "study", "学习", 0.1, "exam_prep|language_learning|productivity",
        ("exam|mock test|past papers|revision|flashcards|study plan|cram|score",
         ("vocabulary|grammar|IELTS|speaking practice|listening|language exchange|pronunciation"
          "|writing task"),
         "pomodoro|to-do list|planner|focus|deep work|time blocking|habit tracker|notion"),
        ("考试|刷题|复习|真题|备考|上岸", "单词|语法|雅思|口语|听力|发音", "番茄钟|计划本|自律|专注|效率|打卡"),
        "study|notes|library|desk|learning|student|homework|course|lecture|teacher|textbook"
        "|highlighter|memory|method|tips|progress|motivation|schedule|morning|late night"
        "|coffee|goal|university|campus|exam season|review|practice|skill|class|reading",
        "学习|笔记|图书馆|学生|作业|课程|老师|教材|方法|进度|动力|自习|大学|校园|早起|熬夜|效率"
        "|目标|提升|干货",
        "study|学习打卡|studygram|考研|备考|英语学习|productivity|自律学习",
        "StudyMate|NoteLab|LinguaPro|FocusFox", "Peking University Library|Study Cafe|"
        "City Library|Language Center", "e-ink tablet|gel pens|study lamp|vocab app",
        "Teacher Amy|Professor Ma|Study With Jin|Tutor Kevin"),
    _topic(
        "games", "游戏", -0.6, "mobile_games|console_games|board_games",
        ("mobile game|gacha|ranked match|daily quest|skins|battle pass|guild|mmo",
         "console|controller|open world|boss fight|speedrun|co-op|achievement|trophy",
         "board game|dice|card game|strategy|game night|meeple|deck building|party game"),
        ("手游|抽卡|排位|皮肤|公会|日常任务", "主机|手柄|开放世界|打boss|通关|联机", "桌游|骰子|卡牌|狼人杀|剧本杀|聚会"),
        "game|gaming|player|level|quest|team|match|win|loss|strategy|build|character|story"
        "|graphics|gameplay|update|patch|tips|guide|noob|pro|clutch|lag|fps|multiplayer"
        "|solo|map|loot|grind|esports",
        "游戏|玩家|上分|队友|攻略|剧情|画面|更新|版本|新手|大佬|操作|副本|装备|开黑|电竞|通关|关卡"
        "|角色|好玩",
        "gaming|游戏日常|gamer|手游推荐|boardgames|开黑|nintendo|游戏攻略",
        "PixelForge|Dragon Byte|Meeple House|Arcadia", "Game Cafe|Esports Arena|Board Game Bar|"
        "Arcade Street", "handheld console|gaming headset|dice set|mechanical mouse",
        "Streamer Xiao|Pro Player K|Luna Plays|Uncle Game"),
    _topic(
        "music", "音乐", 0.0, "pop|instruments|concerts",
        ("playlist|chorus|new single|lyrics|album|chart|cover song|vocals",
         "guitar|piano|ukulele|chords|practice|sheet music|violin|drum kit",
         "concert|live show|festival|encore|front row|setlist|light stick|tour"),
        ("歌单|新歌|歌词|专辑|翻唱|华语", "吉他|钢琴|尤克里里|和弦|练琴|小提琴", "演唱会|音乐节|现场|返场|应援|巡演"),
        "music|song|melody|beat|rhythm|band|singer|sound|headphones|listen|vibe|genre|indie"
        "|rock|jazz|acoustic|harmony|note|tempo|studio|recording|lyric|voice|stage|fan|track"
        "|loop|bass|tune|performance",
        "音乐|歌曲|旋律|节奏|乐队|歌手|耳机|单曲循环|现场|氛围|独立|摇滚|爵士|声音|舞台|粉丝|录音"
        "|好听|宝藏歌曲|治愈",
        "music|歌单分享|livemusic|演唱会|guitar|音乐节|nowplaying|宝藏歌曲",
        "Echo Records|SoundWave|Melody Box|Stringline", "Mercedes-Benz Arena|Livehouse 88|"
        "Strawberry Festival|Music Hall", "studio headphones|acoustic guitar|digital piano"
        "|vinyl player", "Jay Lin|Luna Ye|The Night Owls|Teacher Bai"),
    _topic(
        "film", "影视", 0.1, "movies|tv_dramas|anime",
        ("movie|cinema|director|plot twist|sequel|box office|trailer|screenplay",
         "drama|episode|season finale|binge watch|cliffhanger|lead actor|romance|period drama",
         "anime|manga|studio|opening theme|cosplay|episode one|character design|season two"),
        ("电影|导演|剧情|票房|预告片|影院", "追剧|剧集|大结局|男主|古装剧|甜宠", "动漫|番剧|漫画|声优|二次元|新番"),
        "film|scene|story|ending|character|cast|acting|soundtrack|cinematography|review|rating"
        "|watchlist|streaming|spoiler|classic|genre|thriller|comedy film|documentary|series"
        "|plot|villain|hero|emotional|rewatch|premiere|subtitles|popcorn|must watch|credits",
        "影视|剧情|结局|演技|配乐|评分|片单|剧荒|经典|悬疑|纪录片|反派|主角|泪目|二刷|首映|字幕|推荐"
        "|好看|追番",
        "movies|追剧|film|电影推荐|anime|剧荒推荐|watchlist|影评",
        "Silver Screen|StreamBox|Lantern Films|Sakura Studio", "IMAX Cinema|Film Museum|"
        "Anime Expo Hall|Drive-in Theater", "projector|streaming subscription|movie poster"
        "|blu-ray box set", "Director Han|Actor Zhou|Critic Mo|Rin Aoki"),
    _topic(
        "photography", "摄影", -0.1, "portrait|landscape|film_camera",
        ("portrait|posing|natural light|bokeh|headshot|golden hour|model|reflector",
         "landscape|tripod|long exposure|sunrise|wide angle|nd filter|mountains|milky way",
         "film camera|35mm|film roll|grain|darkroom|point and shoot|rangefinder|scanning"),
        ("人像|写真|拍照姿势|自然光|逆光|约拍", "风光|三脚架|长曝光|日出|广角|银河", "胶片|胶卷|颗粒感|冲洗|傻瓜机|扫描"),
        "photo|camera|lens|shot|composition|lighting|editing|preset|color grading|shutter"
        "|aperture|iso|focus|frame|angle|mood|raw|exposure|contrast|gear|sensor|zoom|prime"
        "|shoot|photographer|snap|gallery|print|moment|series",
        "摄影|相机|镜头|构图|光线|修图|调色|滤镜|快门|光圈|对焦|氛围感|出片|机位|器材|拍摄|摄影师"
        "|原图|后期|作品",
        "photography|摄影日常|portrait|胶片摄影|landscape|调色|shotoniphone|人像写真",
        "Lumina|FrameWorks|Kodex Film|Aperture Lab", "Bund Waterfront|Old Harbor|"
        "Photo Studio 9|Yellow Mountain", "50mm lens|film scanner|camera strap|travel tripod",
        "Photographer Su|Ken Ito|Lens Lily|Master Gao"),
    _topic(
        "cars", "汽车", -0.7, "electric_vehicles|car_care|car_reviews",
        (("electric car|charging pile|range|battery pack|regenerative braking|home charger"
          "|kWh|autopilot"),
         ("car wash|ceramic coating|detailing|tire pressure|oil change|wax|interior cleaning"
          "|dashcam"),
         "test drive|horsepower|handling|torque|suspension|trim level|cabin|fuel economy"),
        ("电车|新能源|续航|充电桩|电池|智驾", "洗车|镀晶|保养|胎压|换机油|内饰", "试驾|马力|操控|底盘|配置|油耗"),
        "car|drive|engine|road|wheels|speed|seats|trunk|parking|mileage|sedan|suv|hatchback"
        "|brakes|steering|dealership|price|model|commute|upgrade|garage|headlights|mirror"
        "|sound system|safety|comfort|design|ride|traffic|owner",
        "汽车|开车|提车|车主|动力|空间|座椅|后备箱|停车|轿车|SUV|刹车|方向盘|4S店|落地价|通勤|安全"
        "|舒适|颜值|改装",
        "cars|提车日记|ev|新能源汽车|cartok|试驾|carcare|车主分享",
        "Voltra|Apex Motors|Skyline Auto|RoadStar", "Auto Show Hall|Charging Station 24|"
        "Mountain Road|Car Wash Center", "dashcam|seat cushion|car vacuum|phone mount",
        "Tester Wang|Mechanic Zhou|Drive With Eva|Old Liu"),
    _topic(
        "outdoors", "户外", -0.3, "hiking|camping|cycling",
        ("hiking trail|summit|trekking poles|elevation|switchbacks|ridge|hiking boots|waterfall",
         "tent|campfire|sleeping bag|campsite|stargazing|camp stove|glamping|hammock",
         "road bike|cycling route|helmet|climb|saddle|gear shift|group ride|bike lane"),
        ("徒步|登顶|爬山|登山杖|山脊|瀑布", "露营|帐篷|篝火|睡袋|营地|观星", "骑行|公路车|头盔|爬坡|车队|骑友"),
        "outdoors|nature|trail|forest|lake|river|mountain|weather|sunrise|backpack|water"
        "|snacks|map|gps|adventure|wildlife|fresh air|rain gear|layers|jacket|distance|pace"
        "|scenery|park|weekend|escape|sunburn|wild|explore|route",
        "户外|大自然|森林|湖|山|天气|背包|补给|装备|路线|冒险|风景|周末|徒步|晴天|出汗|轻量化|野外"
        "|安全|治愈",
        "outdoors|户外生活|hiking|露营|camping|骑行|natureLovers|徒步路线",
        "TrailPeak|NorthRidge|CampCraft|VeloMax", "Siguniang Mountain|Moganshan|"
        "Qiandao Lake|Forest Park Trail", "down jacket|camping lantern|water filter|bike lights",
        "Guide Tashi|Hiker Mei|Ranger Tom|Cyclist Ou"),
    _topic(
        "crafts", "手工", 0.5, "knitting|pottery|diy_jewelry",
        ("knitting|yarn|needles|crochet|stitch|sweater pattern|scarf|granny square",
         "pottery|clay|wheel throwing|glaze|kiln|ceramic mug|trimming|bowl",
         "beads|earrings|resin|pliers|charm bracelet|wire wrapping|pendant|necklace"),
        ("编织|毛线|钩针|针法|围巾|毛衣", "陶艺|拉坯|釉色|窑|陶瓷杯|手作碗", "串珠|耳环|滴胶|手链|吊坠|项链"),
        "diy|handmade|craft|project|tutorial|pattern|materials|tools|gift|cozy|colorful"
        "|texture|beginner|weekend|kit|shop|studio|workshop|design|cute|step by step|fail"
        "|finished|custom|palette|cutting|glue|thread|fabric|creative",
        "手工|手作|教程|材料|工具|礼物|治愈|配色|新手|周末|工作室|成品|原创|创意|解压|慢生活|步骤"
        "|翻车|好看|定制",
        "diy|手工|handmade|手作日常|crafts|编织|pottery|陶艺",
        "Yarn Garden|ClayDay|BeadBox|Maker Lane", "Pottery Studio 21|Craft Market|"
        "Jingdezhen Old Kiln|Maker Space", "wool yarn|glaze set|bead organizer|knitting kit",
        "Auntie Knit|Potter Jia|Maker Ruby|Teacher Ling"),
    _topic(
        "health", "健康", 0.3, "nutrition|sleep|mental_health",
        ("nutrition|fiber|vegetables|balanced diet|hydration|protein intake|vitamins|whole grains",
         "sleep schedule|insomnia|bedtime|melatonin|nap|deep sleep|screen time|sleep hygiene",
         "anxiety|stress|therapy|self care|journaling|burnout|mindfulness|support"),
        ("营养|膳食|蔬菜|维生素|粗粮|饮水", "睡眠|失眠|早睡|午睡|作息|助眠", "焦虑|压力|心理|情绪|自我关怀|倦怠"),
        "health|wellness|doctor|checkup|habit|body|energy|symptoms|recovery|remedy|diet"
        "|routine|balance|prevention|clinic|blood test|lifestyle|calm|mood|rest|walk|water"
        "|posture|immune|gut|advice|research|healthy|tips|mind",
        "健康|养生|医生|体检|习惯|身体|精力|症状|恢复|饮食|作息|平衡|预防|医院|情绪|休息|散步|喝水"
        "|免疫|肠胃",
        "health|健康生活|wellness|养生|selfcare|睡眠|mentalhealth|营养",
        "VitaWell|CalmMind|SleepWell|GreenPlate", "Community Clinic|Wellness Center|"
        "City Hospital|Tea House Park", "sleep mask|fiber cereal|fitness tracker|herbal tea",
        "Dr. Zhang|Nutritionist Yu|Therapist Ann|Nurse Kelly"),
    _topic(
        "career", "职场", 0.0, "job_hunting|workplace|side_projects",
        ("resume|cover letter|interview|job offer|recruiter|portfolio|internship|referral",
         "manager|meeting|deadline|promotion|coworkers|overtime|feedback|office",
         "side project|freelance|blog|newsletter|small shop|weekend project|skills|online course"),
        ("简历|面试|offer|实习|内推|求职", "领导|开会|加班|升职|同事|汇报", "副业|自由职业|公众号|小店|技能|网课"),
        "career|job|work|salary|team|skills|growth|goal|networking|linkedin|boss|company"
        "|startup|industry|role|experience|project|presentation|email|colleague|workload"
        "|balance|burnout|commute|remote|office politics|negotiation|raise|mentor|plan",
        "职场|工作|薪资|团队|成长|技能|目标|公司|行业|岗位|经验|项目|汇报|邮件|同事|加班|通勤|远程"
        "|跳槽|打工人",
        "career|职场干货|jobhunting|求职|worklife|打工人|interviewtips|职场成长",
        "HireHub|Workwise|DeskMate|CareerPath", "CBD Tower|Co-working Space|Job Fair Hall|"
        "Tech Park", "resume template|standing desk|planner notebook|laptop stand",
        "HR Linda|Mentor Xu|Boss Wang|Career Coach Eve"),
    _topic(
        "books", "读书", 0.3, "fiction|self_help|reading_notes",
        ("novel|chapter|protagonist|mystery|fantasy|literary fiction|page turner|trilogy",
         "self help|habits|mindset|productivity book|lessons|takeaways|psychology|discipline",
         "reading notes|annotations|quotes|book journal|highlights|summary|bookmark|reading list"),
        ("小说|章节|悬疑|奇幻|文学|主角", "自我成长|习惯|思维|心理学|认知|自律", "读书笔记|摘抄|书摘|书单|金句|批注"),
        "book|reading|author|story|page|library|paperback|ebook|bookstore|read|review|genre"
        "|writing|series|classic|recommend|shelf|plot|characters|ending|cozy|tea|weekend"
        "|quote|finish|library card|audiobook|bookish|stack|chapter one",
        "读书|阅读|作者|故事|书店|图书馆|电子书|书架|情节|人物|结局|推荐|经典|好书|书籍|读完|安静"
        "|治愈|文字|思考",
        "books|读书笔记|bookstagram|书单推荐|reading|好书分享|booktok|阅读打卡",
        "Paper Lantern|Inkwell|PageTurn|Cedar Books", "Sisyphe Bookstore|Old Library|"
        "Book Street|Reading Garden", "e-reader|book light|reading stand|leather bookmark",
        "Author Yan|Reader Qiu|Professor Ho|Librarian Sue"),
    _topic(
        "art", "艺术", 0.2, "painting|illustration|exhibitions",
        ("painting|watercolor|oil paint|canvas|brushwork|acrylic|still life|palette knife",
         "illustration|digital art|sketchbook|procreate|line art|character sketch|tablet|comic",
         "exhibition|gallery|museum|installation|curator|art fair|sculpture|opening night"),
        ("画画|水彩|油画|画布|丙烯|静物", "插画|板绘|速写|线稿|手账|漫画", "展览|美术馆|画廊|装置|艺术展|雕塑"),
        "art|artist|color|drawing|sketch|paper|paint|brush|studio|style|technique|inspiration"
        "|composition|texture|light|shadow|portrait|abstract|modern|creative|practice|process"
        "|commission|masterpiece|detail|layer|gradient|mood|series|aesthetic",
        "艺术|画家|色彩|绘画|素描|画笔|工作室|风格|技法|灵感|构图|质感|光影|抽象|现代|创作|练习"
        "|过程|细节|审美",
        "art|绘画日常|artist|插画|watercolor|看展|illustration|艺术展",
        "Brush & Ink|ArtNest|Canvas Co|Pigment Lab", "798 Art District|UCCA|West Bund Museum|"
        "Art Gallery Row", "watercolor set|drawing tablet|sketchbook|easel",
        "Artist Qi|Painter Rosa|Curator Lin|Illustrator Nao"),
    _topic(
        "dance", "舞蹈", 0.4, "kpop_dance|ballet|street_dance",
        ("kpop cover|choreography|dance practice|mirror mode|idol|formation|point dance|fancam",
         "ballet|barre|pointe shoes|plie|turnout|pirouette|tutu|adagio",
         "hip hop|breaking|popping|freestyle|cypher|locking|battle|groove"),
        ("韩舞|编舞|翻跳|镜面|练习室|爱豆", "芭蕾|把杆|足尖鞋|开肩|旋转|软开", "街舞|霹雳舞|机械舞|即兴|律动|斗舞"),
        "dance|dancer|move|rhythm|music|beat|stage|practice|class|teacher|studio|routine"
        "|flexibility|footwork|energy|performance|costume|video|challenge|trend|basic|combo"
        "|count|mirror|sweat|confidence|posture|spin|jump|style",
        "舞蹈|跳舞|舞者|节奏|舞台|练习|课程|老师|舞室|基本功|柔韧|表演|服装|挑战|热舞|动作|卡点|气质"
        "|自信|练舞",
        "dance|舞蹈日常|kpopdance|翻跳|ballet|街舞|dancechallenge|舞室",
        "StepUp Studio|Pointe Co|GrooveLab|Idol Dance", "Dance Studio 8|Grand Theatre|"
        "Street Plaza|Youth Arts Center", "dance sneakers|ballet slippers|knee pads|practice mirror",
        "Choreographer Ray|Ballerina Lin|Dancer Jay|Teacher Momo"),
    _topic(
        "comedy", "搞笑", -0.2, "memes|skits|standup",
        ("meme|reaction image|caption|relatable|template|viral|format|inside joke",
         "skit|sketch|roleplay|parody|pov|script|blooper|character bit",
         "stand-up|open mic|punchline|crowd work|set|comedian|heckler|tight five"),
        ("梗图|表情包|热梗|段子|沙雕|神评论", "小剧场|情景剧|模仿|反转|搞笑视频|整活", "脱口秀|开放麦|包袱|段子手|喜剧|谐音梗"),
        "funny|laugh|joke|lol|hilarious|humor|comedy|prank|fail|cringe|awkward|chaos|roast"
        "|sarcasm|wholesome|random|silly|reaction|timing|delivery|audience|clip|bit|dad joke"
        "|pun|meme page|comment section|plot|twist|mood",
        "搞笑|好笑|笑死|哈哈哈|幽默|整活|尴尬|沙雕|反转|吐槽|段子|快乐|日常|评论区|离谱|抽象|笑点"
        "|离大谱|乐子|名场面",
        "funny|搞笑日常|memes|沙雕|comedy|笑死|relatable|脱口秀",
        "LOL Club|Giggle Box|Punchline Bar|MemeMill", "Comedy Club 42|Open Mic Bar|"
        "Laugh Factory|Sketch Theater", "whoopee cushion|meme calendar|funny mug|clown nose",
        "Comedian Li|Uncle Joke|Funny Fei|Roast Master Q"),
)

TOPIC_NAMES: tuple[str, ...] = tuple(t.name for t in TOPICS)
N_TOPICS = len(TOPICS)
ENTITY_LABELS = ("BRAND", "PLACE", "PRODUCT", "PERSON")

CITIES = _w("Shanghai|Beijing|Chengdu|Hangzhou|Guangzhou|Shenzhen|Xi'an|Chongqing|Wuhan|Nanjing"
            "|Xiamen|Changsha|Kunming|Tokyo|Seoul|Paris|Bangkok|Singapore")

# Generic filler. Function words carry the grammar of the word salad; emotive words the
# RedNote register; generic words keep notes from being pure topic vocabulary.
FUNCTION_EN = _w("the|a|and|so|but|with|for|to|of|in|on|this|that|it|is|was|really|just|very"
                 "|my|I|we|you|also|then|after|before|when|all|some|more|still|maybe|again"
                 "|here|there|now|our|your|they|at|from|too|even|if|because|pretty|she|her|he|his")
EMOTIVE_EN = _w("honestly|must-try|obsessed|lowkey|highly recommend|so good|worth it"
                "|game changer|vibes|literally|insane|cozy|aesthetic|love it|10/10|hidden gem"
                "|no regrets|underrated|chef's kiss|iconic")
GENERIC_EN = _w("weekend|friends|morning|evening|day|time|week|people|place|thing|moment|life"
                "|little|first|last|new|nice|favorite|today|tonight|everyone|finally|small"
                "|whole|kind")
FUNCTION_ZH = _w("的|了|我|也|真的|就是|然后|这个|一下|都|还|很|超级|可以|我们|今天|感觉|有点|非常"
                 "|一起|而且|其实|因为|所以|还是|已经")
EMOTIVE_ZH = _w("绝了|宝藏|yyds|太爱了|无限回购|冲|好绝|氛围感|治愈|种草|狠狠爱了|谁懂啊|真香|救命"
                "|私藏|被惊艳")
GENERIC_ZH = _w("周末|朋友|早上|晚上|时候|生活|日常|第一次|最近|分享|记录|大家|小伙伴|姐妹们")

CLICKBAIT_EN = _w("you won't believe|must-see|last chance|don't scroll past|nobody talks about this"
                  "|this changed everything|read before it's gone|I was shocked|stop everything"
                  "|the truth about|wait for it|save this now")
CLICKBAIT_ZH = _w("必看|千万别错过|后悔没早点知道|最后一天|震惊|一定要看到最后|99%的人不知道|建议收藏"
                  "|赶紧码住|速看")
EMOJIS = _w("🔥|✨|😍|💯|👀|❗|😱|💥|🙌|🤩")

# Promotional phrasing of ads; some of it ("link in bio", "limited time") is shared with
# scams on purpose, so "promotional" is not the same as "harmful".
AD_EN = _w("use code SAVE20 for 20% off|link in bio|limited time offer|partnered with the brand"
           "|shop now at the flagship store|free shipping this week|new launch|sponsored"
           "|tap the link to get yours|official store exclusive")
AD_ZH = _w("限时优惠|下单立减|链接在评论区|品牌合作|官方旗舰店|新品上市|包邮|专属折扣")

# Safe sentences that use harmful-looking words, added only to safe notes of these topics.
LEGIT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "finance": (_w("no investment is guaranteed so diversify|you will not earn quick profit here"
                   "|past returns are not a promise|never send money to strangers online"),
                _w("投资有风险入市需谨慎|没有稳赚的投资|不要相信躺赚")),
    "health": (_w("there is no miracle cure so see a doctor|recovery takes time not a magic pill"
                  "|cancer screening saved my aunt|ask your doctor before any supplement"),
               _w("没有什么神药能根治|有病还是要去医院|别信所谓的祖传秘方")),
    "games": (_w("I bet you cannot beat this level|jackpot of loot in this dungeon"
                 "|bet my whole guild on this boss"),
              _w("运气好抽到了金卡|这把赢麻了")),
    "comedy": (_w("I look so ugly in this photo lol|my brother called me a loser at chess"
                  "|what an idiot move by me"),
               _w("丑照大赏哈哈|被自己蠢哭了")),
}


@dataclass(frozen=True)
class HarmLexicon:
    """Slots and templates of one harm type.

    A template is a tuple of pieces; a piece ``"{SLOT}"`` is filled from ``slots_*``.
    A slot phrase containing a ``triggers`` word is *obvious*, the others are *subtle*.
    """

    name: str
    triggers: tuple[str, ...]
    slots_en: tuple[tuple[str, tuple[str, ...]], ...]
    slots_zh: tuple[tuple[str, tuple[str, ...]], ...]
    templates_en: tuple[tuple[str, ...], ...]
    templates_zh: tuple[tuple[str, ...], ...]
    titles_en: tuple[tuple[str, ...], ...]
    titles_zh: tuple[tuple[str, ...], ...]
    hashtags: tuple[str, ...]


def _slots(**kw: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((k, _w(v)) for k, v in kw.items())


def _tpl(text: str) -> tuple[tuple[str, ...], ...]:
    """Templates as ``"a b {SLOT}/c {SLOT}"``: ``/`` separates templates, spaces pieces."""
    return tuple(tuple(t.split()) for t in text.split("/"))


_CONTACT_EN = ("w e c h a t me|add my wechat|dm for details|V me|check my bio|add vx"
               "|ping me on tele gram|comment 1 and I will message you|whats app 1 3 8 0 0 1 2 6 6"
               "|👉 profile link")
_CONTACT_ZH = "加微信|V我|私我|看主页|加vx|评论区扣1|加薇|➕q|戳头像"
_URGENCY_EN = ("only 5 spots left|closing tonight|today only|first come first served"
               "|last round this month|don't wait|before they shut it down|⏰ hurry")
_URGENCY_ZH = "名额有限|今晚截止|手慢无|仅限今天|最后一批|先到先得"

HARM: dict[str, HarmLexicon] = {
    "scam": HarmLexicon(
        "scam", ("wechat", "guaranteed", "earn", "加微信", "躺赚", "稳赚"),
        _slots(
            HOOK="earn 5k a day|guaranteed 3k every week|made 20k last month from my phone"
                 "|my side hustle now pays my rent|quit my 9-5 three weeks ago"
                 "|💰 five figures while I sleep|money comes in every morning"
                 "|cashed out 8 0 0 0 on friday",
            METHOD="just your phone|10 minutes a day|no experience needed|simple liking tasks"
                   "|copy my trades|I send you the signals|a tiny starter package|from home",
            URGENCY=_URGENCY_EN, CONTACT=_CONTACT_EN,
            PROOF="screenshots in the comments|my student cashed out yesterday|100% legit"
                  "|not a trick, real payouts|hundreds already joined|ask anyone in my group",
            PAY="small deposit to unlock|refundable registration fee|send USDT to start"
                "|transfer 199 for the tutorial|pay the membership and earn it back|activation fee"),
        _slots(
            HOOK="日入过千|躺赚|稳赚不赔|在家月入三万|副业收入超过工资|宝妈也能做|一部手机就能赚",
            METHOD="只要一部手机|每天十分钟|零基础|简单点赞任务|跟着我操作|带你上车",
            URGENCY=_URGENCY_ZH, CONTACT=_CONTACT_ZH,
            PROOF="有截图为证|学员已经回本|真实靠谱|不是骗人的|群里都赚了",
            PAY="先交押金|会员费可退|转账激活|充值才能提现|交199学费"),
        _tpl("{HOOK} with {METHOD}/{URGENCY} , {CONTACT}/{PROOF} . {CONTACT}/{PAY} and {HOOK}"
             "/honestly {HOOK} , {METHOD}/{METHOD} , {PAY} , {URGENCY}/{PROOF} , {URGENCY}"),
        _tpl("{HOOK}{METHOD}/{URGENCY}，{CONTACT}/{PROOF}，{CONTACT}/{PAY}，{HOOK}/{METHOD}，{URGENCY}"),
        _tpl("how I {HOOK}/{HOOK} with {METHOD}/side hustle : {HOOK}"),
        _tpl("{HOOK}！/{METHOD}{HOOK}"),
        _w("sidehustle|副业|passiveincome|在家赚钱|宝妈副业|financialfreedom")),
    "gambling": HarmLexicon(
        "gambling", ("casino", "bet", "betting", "gamble", "jackpot", "赌"),
        _slots(
            GAME="online casino|slots|baccarat|live tables|football odds|lottery picks"
                 "|the color game|big or small|sports betting",
            WIN="hit 8 8 8 8 last night|turned 200 into 20k|doubled up again|won big on red"
                "|jackpot three times this week|cleared 5 figures in one round"
                "|my balance went 🚀",
            PLATFORM="a new platform|this app|the site in my profile|our private group"
                     "|the link in bio|an overseas room|the new table everyone is on",
            BONUS="first deposit bonus 100%|free spins for new members|daily rebate"
                  "|bet 100 get 50|welcome credit|a lucky red packet for newcomers",
            URGENCY=_URGENCY_EN, CONTACT=_CONTACT_EN,
            TIP="follow my picks|I share the pattern|the system never loses|inside info"
                "|trust my numbers|just copy my orders"),
        _slots(
            GAME="百家乐|彩票|棋牌|老虎机|体育竞猜|大小单双|真人桌|网上赌场",
            WIN="昨晚中了8888|两百翻到两万|又翻倍了|一把回本|连中三把",
            PLATFORM="新平台|这个app|主页链接|内部群|海外房间",
            BONUS="首充送100%|新人送彩金|每日返水|充值有礼|注册送红包",
            URGENCY=_URGENCY_ZH, CONTACT=_CONTACT_ZH,
            TIP="跟我下单|带你稳赢|有规律可循|内部消息|照着我的号码买|小赌怡情"),
        _tpl("{WIN} on {GAME}/{GAME} on {PLATFORM} , {BONUS}/{TIP} , {CONTACT}/{BONUS} , {URGENCY}"
             "/{WIN} , {TIP}/{PLATFORM} has {GAME} , {CONTACT}"),
        _tpl("{GAME}{WIN}/{PLATFORM}{BONUS}/{TIP}，{CONTACT}/{BONUS}，{URGENCY}/{WIN}，{TIP}"),
        _tpl("{WIN} !/how I {WIN}/{GAME} tips : {WIN}"),
        _tpl("{WIN}！/{GAME}{TIP}"),
        _w("luckyday|好运|winning|手气|luckydraw|今日份好运")),
    "fake_health": HarmLexicon(
        "fake_health", ("cure", "cured", "miracle", "cancer", "根治", "神药"),
        _slots(
            CLAIM="cured my diabetes in 7 days|reverses high blood pressure|shrinks tumors naturally"
                  "|no more insulin after a month|my aunt's sugar levels back to normal"
                  "|joint pain gone for good|clears cancer cells|kidneys reset in two weeks",
            MIRACLE="miracle formula|secret recipe doctors hide|ancient remedy|100% natural"
                    "|what hospitals won't tell you|one weird trick|banned in hospitals"
                    "|clinically ignored",
            PRODUCT="this herbal tea|these drops|the detox patch|this powder|our enzyme drink"
                    "|the magnetic bracelet|a special oil blend",
            DISEASE="diabetes|cancer|high blood pressure|arthritis|thyroid problems|gout"
                    "|fatty liver",
            ADVICE="throw away your pills|stop the chemo|no need to see a doctor"
                   "|skip the medication|doctors are wrong about this|drink it instead of meds",
            CONTACT=_CONTACT_EN),
        _slots(
            CLAIM="七天根治糖尿病|血压恢复正常|肿瘤自己消了|一个月停了胰岛素|关节痛再也没犯",
            MIRACLE="神药|祖传秘方|纯天然|医院不会告诉你|老中医偏方|国外禁售",
            PRODUCT="这款草本茶|这个滴剂|排毒贴|酵素粉|磁疗手环",
            DISEASE="糖尿病|癌症|高血压|痛风|脂肪肝|甲状腺",
            ADVICE="把药都停了|不用去医院|别做化疗|医生说的不对",
            CONTACT=_CONTACT_ZH),
        _tpl("{PRODUCT} {CLAIM}/{MIRACLE} for {DISEASE} , {CONTACT}/{ADVICE} , {PRODUCT} works"
             "/{PRODUCT} is a {MIRACLE}/{CLAIM} . {ADVICE}/{DISEASE} ? {PRODUCT} , {CONTACT}"),
        _tpl("{PRODUCT}{CLAIM}/{MIRACLE}治{DISEASE}，{CONTACT}/{ADVICE}，{PRODUCT}就够了/{CLAIM}，{ADVICE}"),
        _tpl("{CLAIM}/the {MIRACLE} for {DISEASE}/{PRODUCT} {CLAIM}"),
        _tpl("{CLAIM}！/{MIRACLE}{PRODUCT}"),
        _w("natural|养生秘方|wellnesstips|偏方|holistic|健康秘诀")),
    "harassment": HarmLexicon(
        "harassment", ("ugly", "loser", "idiot", "trash", "kill", "丑", "废物"),
        _slots(
            TARGET="this blogger|the girl in this post|she|that guy|the author|this so called"
                   " influencer|people like that|this guy|whoever made this",
            INSULT="so ugly|such a loser|a total idiot|trash|l o s e r|tr@sh|a walking joke"
                   "|nobody asked for your face|embarrassing to look at|what a clown 🤡"
                   "|should never post again",
            THREAT="watch your back|we know which school you go to|your address is going online"
                   "|I will find you|see you outside|I'd kill to see you cry"
                   "|your boss will hear about this",
            MOB="everyone report this account|go flood the comments|let's make them delete it"
                "|screenshot and spread it|tag her family|send this to his friends",
            DOX="the number is 1 3 9 x x x x|lives near the east gate, room 302"
                "|real name is going around|I have photos from school|his office is on 5th st"),
        _slots(
            TARGET="这个博主|楼主|她|那个男的|这种人|评论区那位",
            INSULT="真丑|废物|脑子有病|滚出去|辣眼睛|丢人现眼|别再发了|🤡本人",
            THREAT="小心点|我知道你在哪上学|等着被开盒|出门注意|迟早收拾你",
            MOB="大家去冲她|一起举报|去她评论区|挂出来|转给她同学",
            DOX="她电话是139xxxx|住在东门附近|真名已经扒出来了|有她的照片"),
        _tpl("{TARGET} is {INSULT}/{MOB} , {THREAT}/{TARGET} ? {INSULT}/{DOX} . {MOB}"
             "/{THREAT} , {TARGET} is {INSULT}/{INSULT} , {DOX}"),
        _tpl("{TARGET}{INSULT}/{MOB}，{THREAT}/{DOX}，{MOB}/{THREAT}，{TARGET}{INSULT}"),
        _tpl("{TARGET} is {INSULT}/exposing {TARGET}/{MOB}"),
        _tpl("{TARGET}{INSULT}/{MOB}！/挂一下{TARGET}"),
        _w("exposed|避雷|callout|挂人|truth|吐槽")),
}
